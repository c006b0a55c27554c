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
	url="$(start "$version" "$dir")"
	local rc=0
	FLEUTANBEAT_ES_URL="$url" FLEUTANBEAT_ES_VERSION="$version" FLEUTANBEAT_ES_PID="$(cat "$dir/pid")" \
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
*) die "usage: $0 start <version> <dir> [-E...] | stop <dir> | run <version> <dir> -- cmd... | fetch <version>" ;;
esac
