#!/usr/bin/env bash
# Install (or upgrade) gitops-agent on this host from this checkout, as a systemd service
# (docs/install.md). Run as root from anywhere in the checkout; running it again is harmless
# and is how an upgrade is done: `git pull && sudo packaging/install.sh`.
#
#   1. npm install (with the dev dependencies: TypeScript compiles) and npm run build in the checkout;
#   2. the application (dist/, schema/, package.json, production node_modules pruned offline)
#      goes to /opt/gitops-agent; the version it replaces is kept as /opt/gitops-agent.previous;
#   3. /usr/local/bin/agent runs it with this Node;
#   4. /etc/systemd/system/gitops-agent.service, /etc/gitops-agent/ with config.yaml from
#      config.example.yaml (only if there is no config.yaml) and an empty agent.env (only if absent);
#      on a fresh config.yaml, the restic image built from /usr/bin/restic on the engine
#      (`agent backup restic-image`, DOCKER_HOST honoured) as backup.restic.image;
#   5. systemctl daemon-reload, and a restart when the service is running (it lets the
#      transaction in flight finish first). It never enables or starts the service by itself.
#
# Options:
#   --prefix DIR     where the application goes (default /opt/gitops-agent)
#   --no-restart     do not restart a running service
#   --skip-build     use dist/ as it is (already built)
# DESTDIR=/some/root installs under that root instead (packaging, tests), without systemctl.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
cd "$checkout"

prefix=/opt/gitops-agent
restart=1
build_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --no-restart) restart=0 ;;
    --skip-build) build_flags+=(--skip-build) ;;
    -h|--help) sed -n '2,/^set /{/^set /!p}' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
destdir=${DESTDIR:-}
log() { echo "install.sh: $*"; }

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it writes /opt, /usr/local/bin, /etc and the systemd unit)" >&2
  exit 1
fi

node_bin=$(command -v node || true)
[ -n "$node_bin" ] || { echo "install.sh: node is not installed (Node.js >= 20.19 is needed)" >&2; exit 1; }
node_bin=$(readlink -f "$node_bin")
# shellcheck disable=SC2016 # JavaScript, not shell
"$node_bin" -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) { console.error(`install.sh: Node.js >= 20.19 is needed, this is ${process.version}`); process.exit(1); }
'

# 1 + 2: build here, stage the application, then swap it into place
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gitops-agent-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
bash scripts/build-agent-image.sh --stage-only "$tmp/stage" "${build_flags[@]}"
app="$tmp/stage/prebuilt"
version=$("$node_bin" -p 'require(process.argv[1]).version' "$app/package.json")

target="$destdir$prefix"
mkdir -p "$(dirname "$target")"
rm -rf "$target.new"
cp -a "$app" "$target.new"
chmod -R go-w "$target.new"
if [ -d "$target" ]; then
  rm -rf "$target.previous"
  mv "$target" "$target.previous"
fi
mv "$target.new" "$target"
log "gitops-agent $version in $prefix"

# 3: the command
mkdir -p "$destdir/usr/local/bin"
wrapper="$destdir/usr/local/bin/agent"
cat >"$wrapper.new" <<EOF
#!/bin/sh
# gitops-agent $version, installed by packaging/install.sh from $checkout
exec "$node_bin" "$prefix/dist/agent/cli/main.js" "\$@"
EOF
chmod 0755 "$wrapper.new"
mv "$wrapper.new" "$wrapper"

# 4: unit, configuration directory, state directory
unit_dir="$destdir/etc/systemd/system"
mkdir -p "$unit_dir"
install -m 0644 packaging/gitops-agent.service "$unit_dir/gitops-agent.service"
etc="$destdir/etc/gitops-agent"
install -d -m 0750 "$etc"
install -m 0644 packaging/config.example.yaml "$etc/config.example.yaml"
fresh_config=0
if [ ! -e "$etc/config.yaml" ]; then
  install -m 0640 packaging/config.example.yaml "$etc/config.yaml"
  log "wrote /etc/gitops-agent/config.yaml from the example: edit it (the source at least)"
  fresh_config=1
else
  log "kept the existing /etc/gitops-agent/config.yaml (the new example is config.example.yaml beside it)"
fi
if [ ! -e "$etc/agent.env" ]; then
  cat >"$etc/agent.env" <<'EOF'
# Environment of the gitops-agent service (KEY=value lines, read by systemd).
# AGENT_* variables override config.yaml (docs/configuration.md); secrets that the
# configuration names by variable go here too, e.g.:
#GIT_TOKEN=...
#WEBHOOK_SECRET=...
#AWS_ACCESS_KEY_ID=...
#AWS_SECRET_ACCESS_KEY=...
EOF
  chmod 0600 "$etc/agent.env"
fi
install -d -m 0700 "$destdir/var/lib/gitops-agent"

# 4b: backups in a restic repository (the reference deployment), with an image built on the
# engine from this host's restic (Debian's package), pinned by its id: on a fresh configuration
if [ "$fresh_config" = 1 ]; then
  if [ -x /usr/bin/restic ] && "$node_bin" "$target/dist/agent/cli/main.js" backup restic-image --write-config "$etc/config.yaml"; then
    log "backups: restic, with the image added to config.yaml; the repository password is generated with the first backup: escrow it (docs/install.md)"
  else
    log "backups: plain archives until backup.restic.image is set (apt-get install restic, then: agent backup restic-image --write-config /etc/gitops-agent/config.yaml)"
  fi
fi

# 5: systemd
if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet gitops-agent.service; then
    if [ "$restart" = 1 ]; then
      log "restarting the running service (it finishes the transaction in flight first)"
      systemctl restart gitops-agent.service
    else
      log "the running service still runs the previous version: systemctl restart gitops-agent"
    fi
  else
    log "next: edit /etc/gitops-agent/config.yaml, then: agent validate --config /etc/gitops-agent/config.yaml && systemctl enable --now gitops-agent"
  fi
elif [ -z "$destdir" ]; then
  log "systemd is not running here: start it with /usr/local/bin/agent run --config /etc/gitops-agent/config.yaml"
fi
log "done: agent $("$node_bin" "$target/dist/agent/cli/main.js" --version) installed"
