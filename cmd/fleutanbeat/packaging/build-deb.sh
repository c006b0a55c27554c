#!/bin/sh
# build-deb.sh BINARY VERSION OUTDIR: stages the package tree and builds
# OUTDIR/fleutanbeat_VERSION_ARCH.deb with dpkg-deb (Debian base; no Go
# dependency). The repository is found from this script's place; BINARY
# and OUTDIR are relative to the caller. Prints the .deb's path. DEB_COMPRESSION
# (xz, gzip, zstd, none) overrides xz; the tests use none for speed.
set -eu

bin=$1
version=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

# Debian versions must start with a digit (deb-version(7)); git describe
# may give a bare commit.
case $version in
  [0-9]*) ;;
  *) version="0.0.0~$version" ;;
esac
version=$(printf '%s' "$version" | tr -c 'A-Za-z0-9.+~\n-' '+')
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(dpkg --print-architecture) ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
umask 022

install -d "$stage/DEBIAN" "$stage/usr/share/fleutanbeat/bin" "$stage/usr/bin" \
  "$stage/usr/lib/systemd/system" "$stage/etc/fleutanbeat" \
  "$stage/usr/share/fleutanbeat/kibana" "$stage/usr/share/doc/fleutanbeat"
install -m 0755 "$bin" "$stage/usr/share/fleutanbeat/bin/fleutanbeat"
ln -s ../share/fleutanbeat/bin/fleutanbeat "$stage/usr/bin/fleutanbeat"
install -m 0644 "$here/fleutanbeat.service" "$stage/usr/lib/systemd/system/fleutanbeat.service"
# 0600 root: the config may hold credentials. The service user reads it
# through CAP_DAC_READ_SEARCH, and cannot change it.
install -m 0600 "$repo/fleutanbeat.yml" "$stage/etc/fleutanbeat/fleutanbeat.yml"
# Kibana saved objects (NDJSON) as setup --dashboards imports them.
for f in "$repo"/kibana/*.ndjson "$repo"/kibana/README.md; do
  [ -f "$f" ] && install -m 0644 "$f" "$stage/usr/share/fleutanbeat/kibana/"
done
install -m 0644 "$here/README.md" "$stage/usr/share/doc/fleutanbeat/README.packaging.md"
for s in postinst prerm postrm; do
  install -m 0755 "$here/deb/$s" "$stage/DEBIAN/$s"
done
echo /etc/fleutanbeat/fleutanbeat.yml > "$stage/DEBIAN/conffiles"
chmod 0644 "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: fleutanbeat
Version: $version
Architecture: $arch
Maintainer: fleutanbeat maintainers <fleutanbeat@localhost>
Installed-Size: $size
Depends: adduser
Section: net
Priority: optional
Homepage: https://github.com/fleutan/fleutanbeat
Description: per-flow, per-core and per-queue network metrics shipper
 fleutanbeat ships TCP/UDP flows with their processes, the cores that
 network processes run on and traffic control statistics per TX queue
 to Elasticsearch, Logstash or files. It runs as the unprivileged user
 fleutanbeat with only the capabilities its inputs need.
CONTROL
chmod 0644 "$stage/DEBIAN/control"

mkdir -p "$out"
deb="$out/fleutanbeat_${version}_${arch}.deb"
# --root-owner-group: every file root:root without fakeroot.
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
