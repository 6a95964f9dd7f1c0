#!/usr/bin/env bash
# Build the gitops-agent container image (Dockerfile, docs/install.md).
#
#   scripts/build-agent-image.sh                      # docker build: npm install + compile inside the build
#   scripts/build-agent-image.sh --prebuilt           # compile here, stage dist/ + production node_modules,
#                                                     # docker build --target prebuilt: the build downloads nothing
#   scripts/build-agent-image.sh --stage-only DIR     # only write that staged context to DIR (no docker)
#
# Options:
#   --tag REF          image reference (default gitops-agent:<package version>)
#   --node-image REF   base image, the NODE_IMAGE build argument (default node:20-bookworm-slim)
#   --skip-build       do not run `npm run build` first (dist/ is current)
#   -- ARGS...         passed on to `docker build` (e.g. --network host, --no-cache)
#
# The staged context is the Dockerfile plus prebuilt/: this checkout's dist/, schema/,
# package.json, packaging/healthcheck.mjs and a copy of its node_modules pruned offline to the
# production dependencies (`npm prune --omit=dev --offline`, then checked with `npm ls`).
# For builders without access to the npm registry, for the tests (their engine has no outside
# network), and for packaging/install.sh (the same tree goes to /opt/gitops-agent).
# The host's Node must be 20 on glibc, like the image: the few native addons (ssh2,
# cpu-features, both optional) are copied as built here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=full
stage=""
tag=""
node_image=""
skip_build=0
docker_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) mode=prebuilt ;;
    --stage-only) mode=stage; stage=${2:?--stage-only needs a directory}; shift ;;
    --tag) tag=${2:?--tag needs a reference}; shift ;;
    --node-image) node_image=${2:?--node-image needs a reference}; shift ;;
    --skip-build) skip_build=1 ;;
    --) shift; docker_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set /{/^set /!p}' "$0"; exit 0 ;;
    *) echo "build-agent-image: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

version=$(node -p 'require("./package.json").version')
tag=${tag:-gitops-agent:$version}
build_args=()
[ -n "$node_image" ] && build_args+=(--build-arg "NODE_IMAGE=$node_image")

if [ "$mode" = full ]; then
  exec docker build "${build_args[@]}" -t "$tag" "${docker_args[@]}" "$root"
fi

# --- staged context ---------------------------------------------------------------------------
if [ ! -d node_modules/typescript ]; then
  echo "build-agent-image: installing the dependencies (npm install)" >&2
  npm install --no-audit --no-fund
fi
[ "$skip_build" = 1 ] || npm run build >&2
[ -f dist/agent/cli/main.js ] || { echo "build-agent-image: dist/ is missing: run npm run build" >&2; exit 1; }

cleanup_stage=0
if [ "$mode" = prebuilt ]; then
  stage=$(mktemp -d "${TMPDIR:-/tmp}/gitops-agent-ctx.XXXXXX")
  cleanup_stage=1
  trap '[ "$cleanup_stage" = 1 ] && rm -rf "$stage"' EXIT
else
  mkdir -p "$stage"
  if [ -n "$(ls -A "$stage")" ]; then
    [ -f "$stage/.gitops-agent-stage" ] || { echo "build-agent-image: $stage is not empty and not a staged context: refusing to overwrite it" >&2; exit 1; }
    find "$stage" -mindepth 1 -delete
  fi
fi
touch "$stage/.gitops-agent-stage"
# The Dockerfile's prebuilt stage copies prebuilt/ into the image. No .dockerignore in the
# stage: the repository's would exclude dist/ and node_modules/.
app="$stage/prebuilt"
mkdir -p "$app/packaging"
cp Dockerfile package.json "$stage/"
cp package.json package-lock.json "$app/"
cp packaging/healthcheck.mjs "$app/packaging/"
cp -a schema dist "$app/"
# node_modules: only the production packages when npm's record of the installed tree says which
# (much faster than copying everything), then pruned and checked by npm itself below
if [ -f node_modules/.package-lock.json ]; then
  node -e '
    const l = require("./node_modules/.package-lock.json");
    console.log("node_modules/.package-lock.json\nnode_modules/.bin");
    for (const [k, v] of Object.entries(l.packages ?? {}))
      if (k.startsWith("node_modules/") && !v.dev && !v.link && !k.slice(13).includes("node_modules/")) console.log(k);
  ' >"$stage/.packages"
  tar -cf - -T "$stage/.packages" | tar -C "$app" -xf -
  rm -f "$stage/.packages"
else
  cp -a node_modules "$app/"
fi
(
  cd "$app"
  # --prefix: this copy, whatever an enclosing `npm test` exported (npm_config_local_prefix...)
  npm prune --prefix "$app" --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  # every production dependency must be there (a package.json newer than node_modules is not)
  if ! npm ls --prefix "$app" --omit=dev --all --offline >/dev/null 2>&1; then
    npm ls --prefix "$app" --omit=dev --all --offline >&2 || true
    echo "build-agent-image: the production dependencies are incomplete: run npm install" >&2
    exit 1
  fi
  rm -rf node_modules/.cache
  find node_modules/.bin -xtype l -delete 2>/dev/null || true
  find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete
  rm -f package-lock.json
)
echo "build-agent-image: staged context in $stage ($(du -sh "$stage" | cut -f1))" >&2

if [ "$mode" = prebuilt ]; then
  docker build "${build_args[@]}" --target prebuilt -t "$tag" "${docker_args[@]}" "$stage"
fi
