#!/usr/bin/env bash
# Real Elasticsearch for tests: fetches the official integration-test
# distribution (org.elasticsearch.distribution.integ-test-zip:elasticsearch,
# Maven packaging zip) from Maven Central, caches it under .es/, and runs a
# single node on 127.0.0.1 with a free port.
#
#   elasticsearch.sh start <version> <dir> [-Ekey=value ...]
#       Start a node whose state lives in <dir> (data/, logs/, config/); a
#       second start on the same <dir> keeps the documents. Writes <dir>/url,
#       <dir>/pid, <dir>/version and <dir>/home (the unpacked distribution),
#       prints the URL, and returns once health is green or yellow. Security
#       is off unless an -E flag turns it on (xpack.security.enabled=true).
#   elasticsearch.sh stop <dir>
#       Stop that node (SIGTERM, SIGKILL after 60 s); a no-op when not running.
#   elasticsearch.sh run <version> <dir> -- <command...>
#       start on empty data, run the command with FLEUTANBEAT_ES_URL,
#       FLEUTANBEAT_ES_VERSION, FLEUTANBEAT_ES_PID and FLEUTANBEAT_ES_SCRIPT
#       exported, stop, exit with the command's code.
#   elasticsearch.sh fetch <version>
#       Download and unpack only (the cache is reused when present); prints
#       the distribution's folder.
#   elasticsearch.sh java <version>
#       Print the JDK home used for that version (for bin/elasticsearch-users).
#   elasticsearch.sh image <version>
#       Build (once) the image of that version on the Docker engine of
#       DOCKER_HOST and print its tag: a Debian root from debootstrap with a
#       JRE (cached as a tarball under .es/rootfs), the distribution, and
#       .ci/es-image; the tag is the hash of those inputs.
#   elasticsearch.sh rootfs
#       Make (once) that Debian root only; prints the tarball's path.
#
# With DOCKER_HOST set (.ci/docker.sh run exports it) start, stop and run
# use a container of that image on the host network instead of a process,
# with the same folder layout, URL and port rules; run exports the image as
# FLEUTANBEAT_ES_IMAGE so that tests start their own nodes from it.
#
# Environment: ES_HEAP (default 512m), ES_START_TIMEOUT (seconds, default
# 180), ES_USER (default fleutan-es: Elasticsearch refuses to run as root,
# so as root the node runs as this system user, created when missing),
# ES_JAVA_HOME (default: a JDK under /usr/lib/jvm that the version supports).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.es"
ES_HEAP="${ES_HEAP:-512m}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-180}"
ES_USER="${ES_USER:-fleutan-es}"

die() { echo "elasticsearch.sh: $*" >&2; exit 1; }

# java_for prints a JDK home that the version supports: Elasticsearch 8.x
# runs on Java 17 or newer (its bundled JDK is 21-24), 9.x needs Java 21+.
java_for() {
	local version=$1 major=${1%%.*}
	if [[ -n "${ES_JAVA_HOME:-}" ]]; then echo "$ES_JAVA_HOME"; return; fi
	local candidates=(/usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64)
	if ((major < 9)); then
		candidates=(/usr/lib/jvm/java-17-openjdk-amd64 "${candidates[@]}")
	fi
	for j in "${candidates[@]}"; do
		[[ -x "$j/bin/java" ]] && { echo "$j"; return; }
	done
	die "no JDK for Elasticsearch $version under /usr/lib/jvm (need 17+ for 8.x, 21+ for 9.x)"
}

fetch() {
	local version=$1
	local home="$CACHE/dist/elasticsearch-$version"
	if [[ -x "$home/bin/elasticsearch" ]]; then echo "$home"; return; fi
	mkdir -p "$CACHE/zips" "$CACHE/dist"
	local zip="$CACHE/zips/elasticsearch-$version.zip"
	if [[ ! -s "$zip" ]]; then
		command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
		echo "elasticsearch.sh: downloading integ-test-zip $version from Maven Central" >&2
		mvn -q -B dependency:copy \
			"-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip" \
			"-DoutputDirectory=$CACHE/zips" >&2 ||
			die "Maven Central did not serve org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip"
	fi
	# Unpack beside the target and rename, so an interrupted unzip never
	# leaves a half distribution that the cache check above would accept.
	local tmp
	tmp="$(mktemp -d "$CACHE/dist/.unpack.XXXXXX")"
	unzip -q "$zip" -d "$tmp"
	mv "$tmp/elasticsearch-$version" "$home"
	rmdir "$tmp"
	chmod -R a+rX "$home"
	echo "$home"
}

# The Debian root of the image: debootstrap of ROOTFS_SUITE with a JRE and
# curl (for the health check), from the mirror of this machine's apt
# sources, plus the image's user. Cached as a tarball named by the hash of
# what makes it; prints the tarball's path.
ROOTFS_SUITE="${ROOTFS_SUITE:-bookworm}"
ROOTFS_PACKAGES="openjdk-17-jre-headless,curl"
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done
	if [[ -f /etc/apt/sources.list ]]; then
		awk '$1 == "deb" && $2 !~ /security/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' /etc/apt/sources.list
	fi
}
rootfs() {
	local key tar
	key="$(printf 'debootstrap minbase %s %s uid1000\n' "$ROOTFS_SUITE" "$ROOTFS_PACKAGES" | sha256sum | cut -c1-16)"
	tar="$CACHE/rootfs/rootfs-$ROOTFS_SUITE-$key.tar"
	if [[ -s $tar ]]; then echo "$tar"; return; fi
	[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
	if ! command -v debootstrap >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 debootstrap >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 debootstrap >&2; } ||
			die "apt-get install debootstrap failed"
	fi
	local mirror="${MIRROR:-$(apt_mirror | head -n 1)}"
	[[ -n $mirror ]] || die "no Debian mirror in this machine's apt sources; set MIRROR"
	mkdir -p "$CACHE/rootfs"
	local dir
	dir="$(mktemp -d "$CACHE/rootfs/.build.XXXXXX")"
	echo "elasticsearch.sh: debootstrap $ROOTFS_SUITE with $ROOTFS_PACKAGES from $mirror" >&2
	local t0=$SECONDS
	debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$ROOTFS_SUITE" "$dir" "$mirror" >"$dir.log" 2>&1 ||
		{ tail -n 30 "$dir.log" >&2; rm -rf "$dir"; die "debootstrap failed (see $dir.log)"; }
	# debootstrap can leave the target's /proc mounted (seen with
	# bookworm's debootstrap on this kind of machine): the tarball would
	# then hold a copy of the host's /proc and rm -rf would walk into it.
	local m
	for m in proc sys dev/pts dev; do
		if mountpoint -q "$dir/$m"; then umount -l "$dir/$m"; fi
	done
	if grep -q " $dir/" /proc/mounts; then die "mounts left under $dir: $(grep " $dir/" /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')"; fi
	chroot "$dir" groupadd -g 1000 elasticsearch
	chroot "$dir" useradd -u 1000 -g 1000 -d /usr/share/elasticsearch -M -s /usr/sbin/nologin elasticsearch
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man
	# Written beside the target and renamed: an interrupted run leaves no
	# tarball that the cache check would take.
	tar --numeric-owner -C "$dir" -cf "$tar.part" .
	mv "$tar.part" "$tar"
	rm -rf "$dir" "$dir.log"
	echo "elasticsearch.sh: root $tar made in $((SECONDS - t0))s" >&2
	echo "$tar"
}

# image builds the Elasticsearch image on the Docker engine of DOCKER_HOST
# from the root above, the cached distribution and .ci/es-image, with no
# base image; its tag is the hash of all of those, so an image already
# there is not built again. Prints the tag.
image() {
	local version=$1
	[[ -n ${DOCKER_HOST:-} ]] || die "image: DOCKER_HOST is not set (run under .ci/docker.sh run)"
	local home root zip tag
	home="$(fetch "$version")"
	root="$(rootfs)"
	zip="$CACHE/zips/elasticsearch-$version.zip"
	tag="fleutan-es:$version-$({
		basename "$root"
		sha256sum <"$zip"
		cat "$REPO"/.ci/es-image/*
	} | sha256sum | cut -c1-16)"
	if docker_cli image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
	local ctx t0=$SECONDS
	ctx="$(mktemp -d "$CACHE/rootfs/.ctx.XXXXXX")"
	cp "$REPO"/.ci/es-image/* "$ctx/"
	ln "$root" "$ctx/rootfs.tar" 2>/dev/null || cp "$root" "$ctx/rootfs.tar"
	cp -r "$home" "$ctx/elasticsearch"
	docker_cli build -q -t "$tag" "$ctx" >/dev/null || { rm -rf "$ctx"; die "docker build of $tag failed"; }
	rm -rf "$ctx"
	echo "elasticsearch.sh: image $tag built in $((SECONDS - t0))s" >&2
	echo "$tag"
}

# docker_cli is Debian's docker client (the daemon's API version).
docker_cli() {
	if [[ -x /usr/bin/docker ]]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

ensure_user() {
	[[ $(id -u) -ne 0 ]] && return
	id -u "$ES_USER" >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER"
}

# launcher prefixes the node's command: setpriv to drop root, else nothing.
launcher() {
	[[ $(id -u) -eq 0 ]] && echo "$(command -v setpriv) $(priv_args) --"
	return 0
}

# priv_args are setpriv's flags to drop root for the node (none otherwise).
priv_args() {
	[[ $(id -u) -eq 0 ]] && echo "--reuid=$ES_USER --regid=$ES_USER --init-groups"
	return 0
}

as_es() {
	if [[ $(id -u) -eq 0 ]]; then setpriv $(priv_args) -- "$@"; else "$@"; fi
}

running() {
	local dir=$1
	[[ -s "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

start() {
	if [[ -n ${DOCKER_HOST:-} ]]; then start_container "$@"; return; fi
	local version=$1 dir=$2
	shift 2
	local home java
	home="$(fetch "$version")"
	java="$(java_for "$version")"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	running "$dir" && die "a node already runs for $dir (pid $(cat "$dir/pid")); stop it first"
	rm -f "$dir/url" "$dir/pid" "$dir/logs/http.ports" "$dir/logs/transport.ports"
	mkdir -p "$dir/data" "$dir/logs" "$dir/tmp"
	if [[ ! -d "$dir/config" ]]; then
		cp -r "$home/config" "$dir/config"
	fi
	ensure_user
	if [[ $(id -u) -eq 0 ]]; then
		chown -R "$ES_USER:" "$dir"
		as_es test -w "$dir" || die "$ES_USER cannot write $dir: every parent folder must be searchable by others (chmod o+x)"
	fi
	echo "$version" >"$dir/version"
	echo "$home" >"$dir/home"

	local t0=$SECONDS
	local args=(-d -p "$dir/pid"
		-Ediscovery.type=single-node -Enetwork.host=127.0.0.1
		-Etransport.port=29300-29999 -Enode.portsfile=true
		"-Epath.data=$dir/data" "-Epath.logs=$dir/logs"
		-Ecluster.name=fleutan-test "-Enode.name=$(basename "$dir")"
		-Ecluster.routing.allocation.disk.threshold_enabled=false)
	[[ " $* " == *" -Expack.security.enabled="* ]] || args+=(-Expack.security.enabled=false)
	# A restart passes the port it had (-Ehttp.port=N) so clients keep it.
	[[ " $* " == *" -Ehttp.port="* ]] || args+=(-Ehttp.port=19200-19999)
	# node.portsfile makes the node write the ports it bound (the test
	# framework's own way to learn them), so port ranges give a free port
	# without a racy probe. Disk watermarks are off: CI disks may be full-ish.
	# -d detaches the node from this shell and from the caller's terminal.
	env -i PATH="/usr/bin:/bin" HOME=/nonexistent \
		ES_JAVA_HOME="$java" ES_PATH_CONF="$dir/config" ES_TMPDIR="$dir/tmp" \
		ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
		$(launcher) "$home/bin/elasticsearch" "${args[@]}" "$@" \
		</dev/null >"$dir/logs/launcher.log" 2>&1 ||
		{ tail -n 40 "$dir/logs/launcher.log" >&2; die "Elasticsearch $version failed to start (see $dir/logs)"; }

	local port="" scheme=http secure=false
	for a in "$@"; do
		case "$a" in
		-Expack.security.enabled=true) secure=true ;;
		-Expack.security.http.ssl.enabled=true) scheme=https ;;
		esac
	done
	while ((SECONDS - t0 < ES_START_TIMEOUT)); do
		running "$dir" || { tail -n 40 "$dir/logs/launcher.log" >&2; die "Elasticsearch $version exited during start-up (see $dir/logs)"; }
		if [[ -s "$dir/logs/http.ports" ]]; then
			port="$(head -n1 "$dir/logs/http.ports")"
			port="${port##*:}"
			break
		fi
		sleep 0.5
	done
	[[ -n "$port" ]] || die "Elasticsearch $version did not bind within ${ES_START_TIMEOUT}s (see $dir/logs)"
	local url="$scheme://127.0.0.1:$port"
	# With security on, health needs credentials the test creates later;
	# a 401 already proves the REST layer is up.
	while ((SECONDS - t0 < ES_START_TIMEOUT)); do
		if [[ $secure == true ]]; then
			code="$(curl -sk -o /dev/null -w '%{http_code}' "$url/" || true)"
			[[ $code == 401 || $code == 200 ]] && break
		else
			body="$(curl -s "$url/_cluster/health?wait_for_status=yellow&timeout=1s" || true)"
			[[ $body == *'"status":"green"'* || $body == *'"status":"yellow"'* ]] && break
		fi
		sleep 0.5
	done
	((SECONDS - t0 < ES_START_TIMEOUT)) || die "Elasticsearch $version not healthy within ${ES_START_TIMEOUT}s (see $dir/logs)"
	echo "$url" >"$dir/url"
	echo "elasticsearch.sh: $version up at $url in $((SECONDS - t0))s (pid $(cat "$dir/pid"), java $java)" >&2
	echo "$url"
}

# start_container is start on the Docker engine of DOCKER_HOST: the image
# above, host network, settings as environment variables (-Ekey=value
# becomes key=value), the folder's data/ and logs/ (and config/ when the
# caller made one) mounted, and Docker's health check as the wait. Writes
# <dir>/container besides url, pid (the server's host pid), version.
ES_UID=1000
start_container() {
	local version=$1 dir=$2
	shift 2
	local img="${FLEUTANBEAT_ES_IMAGE:-}"
	[[ -n $img ]] || img="$(image "$version")"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	if [[ -s "$dir/container" ]] && [[ "$(docker_cli inspect -f '{{.State.Running}}' "$(cat "$dir/container")" 2>/dev/null)" == true ]]; then
		die "a node already runs for $dir (container $(cat "$dir/container")); stop it first"
	fi
	rm -f "$dir/url" "$dir/pid" "$dir/container" "$dir/logs/http.ports" "$dir/logs/transport.ports"
	mkdir -p "$dir/data" "$dir/logs"
	chown -R "$ES_UID:$ES_UID" "$dir"
	echo "$version" >"$dir/version"
	local args=(run -d --network host --label fleutanbeat.es.dir="$dir"
		--name "fleutan-es-$(basename "$dir")-$$-$RANDOM"
		-e "ES_JAVA_OPTS=-Xms$ES_HEAP -Xmx$ES_HEAP" -e "node.name=$(basename "$dir")"
		-v "$dir/data:/usr/share/elasticsearch/data" -v "$dir/logs:/usr/share/elasticsearch/logs")
	[[ -d "$dir/config" ]] && args+=(-v "$dir/config:/usr/share/elasticsearch/config")
	local a scheme=http
	for a in "$@"; do
		[[ $a == -E*=* ]] || die "start: $a is not -Ekey=value"
		args+=(-e "${a#-E}")
		[[ $a == -Expack.security.http.ssl.enabled=true ]] && scheme=https
	done
	local t0=$SECONDS id
	id="$(docker_cli "${args[@]}" "$img")" || die "docker run $img failed"
	echo "$id" >"$dir/container"
	local st=""
	while ((SECONDS - t0 < ES_START_TIMEOUT)); do
		st="$(docker_cli inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$id")"
		[[ $st == "running healthy" ]] && break
		if [[ $st != running* ]]; then
			docker_cli logs --tail 40 "$id" >&2 2>&1
			die "Elasticsearch $version container exited during start-up ($st; see $dir/logs)"
		fi
		sleep 0.5
	done
	[[ $st == "running healthy" ]] || die "Elasticsearch $version container not healthy within ${ES_START_TIMEOUT}s ($st; see $dir/logs)"
	local port
	port="$(head -n1 "$dir/logs/http.ports")"
	port="${port##*:}"
	local url="$scheme://127.0.0.1:$port"
	echo "$url" >"$dir/url"
	# The server JVM's pid on the host (for CPU and memory figures), not
	# the launcher's: the process whose main class is the server's.
	docker_cli top "$id" -eo pid,args | awk '/org\.elasticsearch\.bootstrap\.Elasticsearch/ { print $1; exit }' >"$dir/pid"
	echo "elasticsearch.sh: $version up at $url in $((SECONDS - t0))s (container ${id:0:12} of $img, host pid $(cat "$dir/pid"))" >&2
	echo "$url"
}

stop() {
	local dir=$1
	if [[ -s "$dir/container" ]]; then
		# docker stop sends SIGTERM and SIGKILL after the grace time, as
		# below for a process; rm frees the name, the data stays in $dir.
		docker_cli stop -t 60 "$(cat "$dir/container")" >/dev/null 2>&1 || true
		docker_cli rm -f "$(cat "$dir/container")" >/dev/null 2>&1 || true
		rm -f "$dir/container" "$dir/pid" "$dir/url"
		return 0
	fi
	[[ -s "$dir/pid" ]] || return 0
	local pid
	pid="$(cat "$dir/pid")"
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 1 120); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	fi
	rm -f "$dir/pid" "$dir/url"
}

run() {
	local version=$1 dir=$2
	shift 2
	[[ ${1:-} == -- ]] && shift
	(($# > 0)) || die "run: no command after --"
	local url
	# Each run starts from empty data: tests assert exact counts.
	stop "$dir"
	rm -rf "$dir/data"
	# Stop on every exit, also when start-up fails half-way.
	trap 'stop "$dir"' EXIT
	# With a Docker engine (.ci/docker.sh run) the node is a container of
	# the image built here, and the tests' own nodes are too.
	local runtime=process
	if [[ -n ${DOCKER_HOST:-} ]]; then
		FLEUTANBEAT_ES_IMAGE="$(image "$version")"
		export FLEUTANBEAT_ES_IMAGE
		runtime="container $FLEUTANBEAT_ES_IMAGE"
	fi
	url="$(start "$version" "$dir")"
	echo "elasticsearch.sh: Elasticsearch runs as a $runtime" >&2
	local rc=0
	FLEUTANBEAT_ES_URL="$url" FLEUTANBEAT_ES_VERSION="$version" FLEUTANBEAT_ES_PID="$(cat "$dir/pid")" \
		FLEUTANBEAT_ES_RUNTIME="${runtime%% *}" \
		FLEUTANBEAT_ES_SCRIPT="$REPO/.ci/elasticsearch.sh" "$@" || rc=$?
	exit "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
start) (($# >= 2)) || die "usage: start <version> <dir> [-Ekey=value ...]"; start "$@" ;;
stop) (($# == 1)) || die "usage: stop <dir>"; stop "$1" ;;
run) (($# >= 3)) || die "usage: run <version> <dir> -- <command...>"; run "$@" ;;
fetch) (($# == 1)) || die "usage: fetch <version>"; fetch "$1" ;;
java) (($# == 1)) || die "usage: java <version>"; java_for "$1" ;;
image) (($# == 1)) || die "usage: image <version>"; image "$1" ;;
rootfs) rootfs ;;
*) die "usage: $0 start <version> <dir> [-E...] | stop <dir> | run <version> <dir> -- cmd... | fetch <version> | java <version> | image <version> | rootfs" ;;
esac
