#!/bin/bash
# Assemble a minimal nginx rootfs in $1 from Debian's nginx packages, downloaded (not installed:
# no nginx service ever starts on the host) into the cache folder $2, their shared libraries
# (ldd, from the host) and busybox-static for a shell and wget. Seconds after the first download.
set -euo pipefail
R=${1:?usage: make-rootfs.sh <empty dir> <deb cache dir>}
DEBS=${2:?usage: make-rootfs.sh <empty dir> <deb cache dir>}
BUSYBOX=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$DEBS"
if ! ls "$DEBS"/nginx_*.deb "$DEBS"/nginx-common_*.deb >/dev/null 2>&1; then
  (cd "$DEBS" && apt-get download nginx nginx-common >/dev/null 2>&1) || { echo "apt-get download nginx nginx-common failed: Debian's package lists are needed (apt-get update)" >&2; exit 1; }
fi
X=$(mktemp -d); LIST=$(mktemp); trap 'rm -rf "$X" "$LIST"' EXIT
for d in "$DEBS"/nginx_*.deb "$DEBS"/nginx-common_*.deb; do dpkg-deb -x "$d" "$X"; done
# merged-/usr layout (Debian bookworm): /lib, /lib64, /bin, /sbin are symlinks into /usr
mkdir -p "$R"/usr/{lib,lib64,bin,sbin}; ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"; ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"
install -m 755 "$X/usr/sbin/nginx" "$R/usr/sbin/nginx"
mkdir -p "$R/etc/nginx/conf.d"; cp "$X/etc/nginx/mime.types" "$R/etc/nginx/"
canon() { for f in "$@"; do [ -e "$f" ] || continue; c="$(readlink -f "$(dirname "$f")")/$(basename "$f")"; echo "${c#/}"; if [ -L "$c" ]; then t=$(readlink -f "$c"); echo "${t#/}"; fi; done; true; }
{ canon /lib64/ld-linux-x86-64.so.2; ldd "$X/usr/sbin/nginx" | awk '/=> \// {print $3}' | sort -u | while read -r l; do canon "$l"; done; } | sort -u > "$LIST"
tar -C / -cf - -T "$LIST" | tar -C "$R" -xf -
cp "$BUSYBOX" "$R/usr/bin/busybox"; for a in sh cat wget mkdir rm printf sleep ls; do ln -s busybox "$R/usr/bin/$a"; done
mkdir -p "$R"/{tmp,run,var/log/nginx,var/lib/nginx}; chmod 1777 "$R/tmp"
printf 'root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\n' > "$R/etc/group"
# The official image's layout: the site configuration under conf.d, logs to the container's output.
cat > "$R/etc/nginx/nginx.conf" <<'CONF'
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
daemon off;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    include /etc/nginx/conf.d/*.conf;
}
CONF
