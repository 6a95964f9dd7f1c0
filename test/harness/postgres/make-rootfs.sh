#!/bin/bash
# Assemble a minimal PostgreSQL 15 rootfs in $1 from the HOST's postgresql-15 binaries, their
# shared libraries (ldd) and busybox-static. Seconds, no network. Adapted from the verified
# recipe make-pg-from-host.sh; the image metadata (ENV, USER, HEALTHCHECK...) is added by
# test/harness/postgres.ts with a build on top of the imported rootfs.
set -euo pipefail
R=${1:?usage: make-rootfs.sh <empty dir>}
HERE=$(cd "$(dirname "$0")" && pwd)
PGB=/usr/lib/postgresql/15
[ -x "$PGB/bin/postgres" ] || { echo "host has no $PGB/bin/postgres: apt-get install postgresql-15 (scripts/ensure-host.sh)" >&2; exit 1; }
BUSYBOX=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
# merged-/usr layout (Debian bookworm): /lib, /lib64, /bin are symlinks into /usr
mkdir -p "$R"/usr/{lib,lib64,bin}; ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"; ln -s usr/bin "$R/bin"
# print each path relative to /, with symlinked directories resolved, plus a symlink's target
canon() { for f in "$@"; do [ -e "$f" ] || continue; c="$(readlink -f "$(dirname "$f")")/$(basename "$f")"; echo "${c#/}"; if [ -L "$c" ]; then t=$(readlink -f "$c"); echo "${t#/}"; fi; done; true; }
LIST=$(mktemp); trap 'rm -f "$LIST"' EXIT
{
  canon $PGB /usr/share/postgresql/15 /usr/share/zoneinfo /usr/lib/locale/C.utf8 /lib64/ld-linux-x86-64.so.2
  # the LLVM JIT would drag in ~100 MB of libLLVM; the server runs with jit=off
  for f in $PGB/bin/* $PGB/lib/*.so; do case "$f" in *llvmjit*) continue;; esac; ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'; done \
    | sort -u | while read -r l; do canon "$l"; done
} | sort -u > "$LIST"
tar -C / --exclude="usr/lib/postgresql/15/lib/llvmjit*" --exclude=usr/lib/postgresql/15/lib/bitcode -cf - -T "$LIST" | tar -C "$R" -xf -
mkdir -p "$R"/{tmp,etc,var/run/postgresql,var/lib/postgresql/data,usr/local/bin}; chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/usr/bin/busybox"; for a in sh cat mkdir chmod rm printf sleep; do ln -s busybox "$R/usr/bin/$a"; done
printf 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\npostgres:x:999:\n' > "$R/etc/group"
chown -R 999:999 "$R/var/lib/postgresql" "$R/var/run/postgresql"
install -m 755 "$HERE/docker-entrypoint.sh" "$R/usr/local/bin/docker-entrypoint.sh"
