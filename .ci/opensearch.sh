#!/usr/bin/env bash
# Real OpenSearch for tests, as .ci/elasticsearch.sh is for Elasticsearch:
# fetches the project's integration-test distribution
# (org.opensearch.distribution.integ-test-zip:opensearch, Maven packaging
# zip: the server and its HTTP transport, no plugins, so no security) from
# Maven Central, caches it under .os/, and runs a single node on 127.0.0.1
# with a free port, as a process.
#
#   opensearch.sh start <version> <dir> [-Ekey=value ...]
#       Start a node whose state lives in <dir> (data/, logs/, config/); a
#       second start on the same <dir> keeps the documents and, once the
#       node had a port, the port. Writes <dir>/url, <dir>/pid and
#       <dir>/version, prints the URL, and returns once health is green or
#       yellow.
#   opensearch.sh stop <dir>
#       Stop that node (SIGTERM, SIGKILL after 60 s); a no-op when not running.
#   opensearch.sh run <version> <dir> [<version> <dir> ...] -- <command...>
#       Start a node of each version on empty data, all at once, run the
#       command with FLEUTANBEAT_OS<major>_URL, FLEUTANBEAT_OS<major>_VERSION
#       and FLEUTANBEAT_OS<major>_PID of each (major: 2 for 2.19.x, 3 for
#       3.x) and FLEUTANBEAT_OS_SCRIPT
#       exported, stop them, exit with the command's code.
#   opensearch.sh fetch <version>
#       Download and unpack only; prints the distribution's folder.
#
# Environment: OS_HEAP (default 512m), OS_START_TIMEOUT (seconds, default
# 180), OS_USER (default fleutan-es: OpenSearch refuses to run as root, so
# as root the node runs as this system user, created when missing),
# OS_JAVA_HOME (default: a JDK under /usr/lib/jvm that the version
# supports: 2.x runs on Java 11+, 3.x needs 21+).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.os"
OS_HEAP="${OS_HEAP:-512m}"
OS_START_TIMEOUT="${OS_START_TIMEOUT:-180}"
OS_USER="${OS_USER:-fleutan-es}"

die() { echo "opensearch.sh: $*" >&2; exit 1; }

java_for() {
	local version=$1 major=${1%%.*}
	if [[ -n "${OS_JAVA_HOME:-}" ]]; then echo "$OS_JAVA_HOME"; return; fi
	local candidates=(/usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64)
	if ((major < 3)); then
		# 2.x is built for 11-21; Java 25 is newer than it knows.
		candidates=(/usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64)
	fi
	for j in "${candidates[@]}"; do
		[[ -x "$j/bin/java" ]] && { echo "$j"; return; }
	done
	die "no JDK for OpenSearch $version under /usr/lib/jvm (need 17 or 21 for 2.x, 21+ for 3.x)"
}

fetch() {
	local version=$1
	local home="$CACHE/dist/opensearch-$version"
	if [[ -x "$home/bin/opensearch" ]]; then echo "$home"; return; fi
	mkdir -p "$CACHE/zips" "$CACHE/dist"
	local zip="$CACHE/zips/opensearch-$version.zip"
	if [[ ! -s "$zip" ]]; then
		command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
		echo "opensearch.sh: downloading integ-test-zip $version from Maven Central" >&2
		mvn -q -B dependency:copy \
			"-Dartifact=org.opensearch.distribution.integ-test-zip:opensearch:$version:zip" \
			"-DoutputDirectory=$CACHE/zips" >&2 ||
			die "Maven Central did not serve org.opensearch.distribution.integ-test-zip:opensearch:$version:zip"
	fi
	# Unpack beside the target and rename, so an interrupted unzip never
	# leaves a half distribution that the cache check above would accept.
	local tmp
	tmp="$(mktemp -d "$CACHE/dist/.unpack.XXXXXX")"
	unzip -q "$zip" -d "$tmp"
	mv "$tmp/opensearch-$version" "$home"
	rmdir "$tmp"
	chmod -R a+rX "$home"
	echo "$home"
}

ensure_user() {
	[[ $(id -u) -ne 0 ]] && return
	id -u "$OS_USER" >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
}

# launcher prefixes the node's command: setpriv to drop root, else nothing.
launcher() {
	[[ $(id -u) -eq 0 ]] && echo "$(command -v setpriv) --reuid=$OS_USER --regid=$OS_USER --init-groups --"
	return 0
}

running() {
	local dir=$1
	[[ -s "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

start() {
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
	[[ -d "$dir/config" ]] || cp -r "$home/config" "$dir/config"
	# jvm.options names logs/gc.log and logs/hs_err relative to the
	# distribution, which the node's user may not write: point them here.
	sed -i "s#\([=:]\)logs/#\1$dir/logs/#g" "$dir/config/jvm.options"
	ensure_user
	if [[ $(id -u) -eq 0 ]]; then
		chown -R "$OS_USER:" "$dir"
		setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups -- test -w "$dir" ||
			die "$OS_USER cannot write $dir: every parent folder must be searchable by others (chmod o+x)"
	fi
	echo "$version" >"$dir/version"

	local t0=$SECONDS
	local args=(-d -p "$dir/pid"
		-Ediscovery.type=single-node -Enetwork.host=127.0.0.1
		-Etransport.port=39300-39999 -Enode.portsfile=true
		"-Epath.data=$dir/data" "-Epath.logs=$dir/logs"
		-Ecluster.name=fleutan-test "-Enode.name=$(basename "$dir")"
		-Ecluster.routing.allocation.disk.threshold_enabled=false)
	# A restart keeps the port (clients keep their URL): the one the node
	# had, unless the caller names one.
	if [[ " $* " != *" -Ehttp.port="* ]]; then
		if [[ -s "$dir/port" ]]; then args+=("-Ehttp.port=$(cat "$dir/port")"); else args+=(-Ehttp.port=29200-29299); fi
	fi
	# node.portsfile makes the node write the ports it bound, so a range
	# gives a free port without a racy probe. -d detaches the node. The
	# JVM options write logs/gc.log relative to the working directory.
	(cd "$dir" && env -i PATH="/usr/bin:/bin" HOME=/nonexistent \
		OPENSEARCH_JAVA_HOME="$java" OPENSEARCH_PATH_CONF="$dir/config" OPENSEARCH_TMPDIR="$dir/tmp" \
		OPENSEARCH_JAVA_OPTS="-Xms$OS_HEAP -Xmx$OS_HEAP" \
		$(launcher) "$home/bin/opensearch" "${args[@]}" "$@" \
		</dev/null >"$dir/logs/launcher.log" 2>&1) ||
		{ tail -n 40 "$dir/logs/launcher.log" >&2; die "OpenSearch $version failed to start (see $dir/logs)"; }

	local port=""
	while ((SECONDS - t0 < OS_START_TIMEOUT)); do
		# -d returns before the node wrote its pid file.
		if [[ -s "$dir/pid" ]] && ! running "$dir"; then
			tail -n 40 "$dir/logs/launcher.log" >&2
			die "OpenSearch $version exited during start-up (see $dir/logs)"
		fi
		if [[ -s "$dir/logs/http.ports" ]]; then
			port="$(head -n1 "$dir/logs/http.ports")"
			port="${port##*:}"
			break
		fi
		sleep 0.5
	done
	[[ -n "$port" ]] || die "OpenSearch $version did not bind within ${OS_START_TIMEOUT}s (see $dir/logs)"
	echo "$port" >"$dir/port"
	local url="http://127.0.0.1:$port" body
	while ((SECONDS - t0 < OS_START_TIMEOUT)); do
		body="$(curl -s "$url/_cluster/health?wait_for_status=yellow&timeout=1s" || true)"
		[[ $body == *'"status":"green"'* || $body == *'"status":"yellow"'* ]] && break
		sleep 0.5
	done
	((SECONDS - t0 < OS_START_TIMEOUT)) || die "OpenSearch $version not healthy within ${OS_START_TIMEOUT}s (see $dir/logs)"
	echo "$url" >"$dir/url"
	echo "opensearch.sh: $version up at $url in $((SECONDS - t0))s (pid $(cat "$dir/pid"), java $java)" >&2
	echo "$url"
}

stop() {
	local dir=$1
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
	# Pairs of <version> <dir> up to --, started at once.
	local versions=() dirs=()
	while (($# >= 2)) && [[ $1 != -- ]]; do
		versions+=("$1") dirs+=("$2")
		shift 2
	done
	[[ ${1:-} == -- ]] && shift
	(($# > 0)) || die "run: no command after --"
	((${#versions[@]} > 0)) || die "run: no <version> <dir>"
	local i
	# Each run starts from empty data: tests assert exact counts.
	for i in "${!dirs[@]}"; do
		stop "${dirs[$i]}"
		rm -rf "${dirs[$i]}/data" "${dirs[$i]}/port"
	done
	trap 'for d in "${dirs[@]}"; do stop "$d"; done' EXIT
	local pids=() failed=0
	for i in "${!dirs[@]}"; do
		start "${versions[$i]}" "${dirs[$i]}" >/dev/null &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed=1
	done
	((failed == 0)) || die "run: a node did not start"
	local envs=() major
	for i in "${!dirs[@]}"; do
		major=${versions[$i]%%.*}
		envs+=("FLEUTANBEAT_OS${major}_URL=$(cat "${dirs[$i]}/url")" "FLEUTANBEAT_OS${major}_VERSION=${versions[$i]}"
			"FLEUTANBEAT_OS${major}_PID=$(cat "${dirs[$i]}/pid")")
	done
	local rc=0
	env "${envs[@]}" FLEUTANBEAT_OS_SCRIPT="$REPO/.ci/opensearch.sh" "$@" || rc=$?
	exit "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
start) (($# >= 2)) || die "usage: start <version> <dir> [-Ekey=value ...]"; start "$@" ;;
stop) (($# == 1)) || die "usage: stop <dir>"; stop "$1" ;;
run) (($# >= 3)) || die "usage: run <version> <dir> [<version> <dir> ...] -- <command...>"; run "$@" ;;
fetch) (($# == 1)) || die "usage: fetch <version>"; fetch "$1" ;;
*) die "usage: $0 start <version> <dir> [-E...] | stop <dir> | run <version> <dir> [<version> <dir> ...] -- cmd... | fetch <version>" ;;
esac
