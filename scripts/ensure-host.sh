#!/bin/bash
# Make sure the Debian packages the tests and the demo need are installed; install the missing
# ones with apt-get. Idempotent and fast (one dpkg-query) when everything is present.
# It never starts a service: the tests run their own private dockerd and registry.
#   docker.io        dockerd, containerd, runc, docker-init (private test engine)
#   docker-registry  OCI registry on 127.0.0.1 (test registry)
#   busybox-static   rootfs of the offline fixture images
#   postgresql-15    host binaries copied into the PostgreSQL fixture image; psql for checks
#   docker-compose   peer to compare against (bench)
#   iproute2         `ip`, to create the test engines' link-local bridge
#   restic           host binary copied into the offline restic image (test/harness/restic-image.ts)
#   curl, git        recipes and the Git server of the tests
# and downloads (never installs: no nginx service on the host) Debian's nginx packages, which
# the tests turn into an offline nginx image (test/harness/nginx/make-rootfs.sh).
set -euo pipefail

NGINX_DEBS="${TMPDIR:-/tmp}/gadt-nginx-debs"
updated=false
nginx_debs() {
  if ls "$NGINX_DEBS"/nginx_*.deb "$NGINX_DEBS"/nginx-common_*.deb >/dev/null 2>&1; then return 0; fi
  mkdir -p "$NGINX_DEBS"
  if ! (cd "$NGINX_DEBS" && apt-get download -qq nginx nginx-common >/dev/null 2>&1); then
    if [ "$updated" = false ] && [ "$(id -u)" -eq 0 ]; then apt-get update -qq; updated=true; fi
    (cd "$NGINX_DEBS" && apt-get download -qq nginx nginx-common >/dev/null 2>&1) || { echo "ensure-host: ERROR: apt-get download nginx nginx-common failed" >&2; exit 1; }
  fi
  echo "ensure-host: nginx packages downloaded to $NGINX_DEBS"
}

PACKAGES=(docker.io docker-registry busybox-static postgresql-15 docker-compose iproute2 restic curl git)

missing=()
# one dpkg-query for all packages; unknown ones are simply absent from the output
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
  grep -qE "^${p} ii" <<<"$installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "ensure-host: all ${#PACKAGES[@]} packages present"
  nginx_debs
  exit 0
fi

echo "ensure-host: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-host: ERROR: not root, cannot install them. Run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# No service may start during the install: postinst scripts would otherwise launch the host's
# own dockerd (creating docker0 on 172.17/16) and a PostgreSQL cluster on port 5432.
# invoke-rc.d honours /usr/sbin/policy-rc.d; add a temporary one unless one exists.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
echo "ensure-host: apt-get update"
apt-get update -qq
updated=true
echo "ensure-host: installing ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "ensure-host: installed ${missing[*]}"
nginx_debs
