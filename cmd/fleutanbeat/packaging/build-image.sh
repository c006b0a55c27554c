#!/bin/sh
# Builds the agent's image FROM scratch (see Dockerfile):
#   build-image.sh BINARY TAG            stage the context and docker build
#   build-image.sh BINARY TAG CONTEXT    only stage the context in CONTEXT
# The CA bundle is this machine's (Debian's ca-certificates, installed
# when missing); nothing comes from an image registry.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BINARY TAG [CONTEXT]" >&2; exit 2; }
bin=$1 tag=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca" ]; then
	echo "build-image.sh: installing ca-certificates for $ca" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates >&2 ||
		{ echo "build-image.sh: no $ca and apt-get install ca-certificates failed" >&2; exit 1; }
fi
if [ $# -ge 3 ]; then
	ctx=$3
	mkdir -p "$ctx"
else
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' EXIT
fi
# Modes are set here: the legacy builder of Debian's docker.io has no
# COPY --chmod. The config is root's and 0644: strict.perms accepts a
# root-owned file that only root may write, and the image's non-root
# default user can read it.
install -m 0755 "$bin" "$ctx/fleutanbeat"
install -m 0644 "$ca" "$ctx/ca-certificates.crt"
install -m 0644 "$here/image/passwd" "$ctx/passwd"
install -m 0644 "$here/image/group" "$ctx/group"
install -m 0644 "$repo/fleutanbeat.yml" "$ctx/fleutanbeat.yml"
install -m 0644 "$here/Dockerfile" "$ctx/Dockerfile"
mkdir -p "$ctx/data"
chmod 0750 "$ctx/data"
[ $# -ge 3 ] && exit 0
docker build -q -t "$tag" -f "$ctx/Dockerfile" "$ctx"
