#!/usr/bin/env bash
# A private Docker engine for the tests: Debian's docker.io (installed when
# missing), one dockerd with its own data root, exec root, pid file and
# socket under the ignored .docker/, so it never meets a system daemon.
# Containers get the host network only: no bridge, no iptables rules.
#
#   docker.sh start        start the daemon (a no-op when it runs); prints
#                          the DOCKER_HOST to use
#   docker.sh stop         remove every container of the daemon, stop it
#   docker.sh run -- cmd   start, run cmd with DOCKER_HOST exported, stop
#                          (also on failure or interrupt), exit with cmd's
#                          code
#
# Without root or without a way to install docker.io, `run` prints why and
# runs cmd without DOCKER_HOST, so Elasticsearch falls back to a process;
# FLEUTANBEAT_REQUIRE_DOCKER=1 (set by .ci/run) makes that a failure.
# The image cache (the data root) stays between runs: images are tagged by
# the hash of their inputs, so a second run does not rebuild them.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
D="${FLEUTANBEAT_DOCKER_DIR:-$REPO/.docker}"
START_TIMEOUT="${DOCKER_START_TIMEOUT:-60}"

die() { echo "docker.sh: $*" >&2; exit 1; }
say() { echo "docker.sh: $*" >&2; }

# exec_root is the daemon's exec root: under $D unless that path is too long
# for the unix sockets containerd makes inside it (108 bytes with the
# socket's own name), then a folder of /run named after $D.
exec_root() {
	local e="$D/exec"
	if ((${#e} > 60)); then
		e="/run/fleutanbeat-docker.$(printf '%s' "$D" | sha256sum | cut -c1-12)"
	fi
	echo "$e"
}

sock() { echo "$D/docker.sock"; }

# available says why no daemon can be had here, or nothing when one can.
unavailable() {
	[[ $(id -u) -eq 0 ]] || { echo "not root (dockerd needs root)"; return; }
	command -v dockerd >/dev/null && return
	command -v apt-get >/dev/null || { echo "no dockerd and no apt-get to install docker.io"; return; }
	return 0
}

install() {
	command -v dockerd >/dev/null && return
	say "installing Debian's docker.io"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 docker.io >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 docker.io >&2; } ||
		die "apt-get install docker.io failed"
}

# cli runs Debian's docker client (the one matching the daemon's API) on
# the private socket.
cli() {
	local docker=/usr/bin/docker
	[[ -x $docker ]] || docker="$(command -v docker)"
	DOCKER_HOST="unix://$(sock)" "$docker" "$@"
}

running() {
	[[ -s "$D/dockerd.pid" ]] && kill -0 "$(cat "$D/dockerd.pid")" 2>/dev/null
}

start() {
	local why
	why="$(unavailable)"
	[[ -z $why ]] || die "$why"
	install
	if running; then
		echo "unix://$(sock)"
		return
	fi
	local ex
	ex="$(exec_root)"
	mkdir -p "$D/data" "$ex"
	((${#D} < 90)) || die "$D is too long a path for the daemon's socket; set FLEUTANBEAT_DOCKER_DIR"
	rm -f "$(sock)"
	# --bridge=none: no docker0 and no bridge networks, so containers can
	# only use the host's network (the tests' network rule); with it,
	# iptables/ip6tables rules and masquerading have nothing to do.
	# setsid: the daemon outlives a Ctrl-C of the caller until stop.
	setsid dockerd \
		--data-root "$D/data" --exec-root "$ex" --pidfile "$D/dockerd.pid" \
		-H "unix://$(sock)" --bridge=none --iptables=false --ip6tables=false \
		--ip-masq=false --storage-driver=overlay2 --log-driver=json-file \
		--containerd-namespace fleutanbeat --containerd-plugins-namespace fleutanbeat-plugins \
		</dev/null >"$D/dockerd.log" 2>&1 &
	local t0=$SECONDS
	until cli version >/dev/null 2>&1; do
		if ((SECONDS - t0 > START_TIMEOUT)); then
			tail -n 30 "$D/dockerd.log" >&2
			die "dockerd did not answer on $(sock) within ${START_TIMEOUT}s (see $D/dockerd.log)"
		fi
		sleep 0.5
	done
	say "dockerd $(cli version -f '{{.Server.Version}}') up on $(sock) in $((SECONDS - t0))s (storage $(cli info -f '{{.Driver}}'), cgroup v$(cli info -f '{{.CgroupVersion}}'))"
	echo "unix://$(sock)"
}

stop() {
	running || { rm -f "$D/dockerd.pid"; return 0; }
	local ids
	ids="$(cli ps -aq 2>/dev/null || true)"
	[[ -z $ids ]] || cli rm -f $ids >/dev/null 2>&1 || say "could not remove containers $ids"
	# A network someone created (testcontainers-go makes a bridge one when
	# not told to use the host's) would outlive the run in the data root.
	cli network prune -f >/dev/null 2>&1 || true
	local pid
	pid="$(cat "$D/dockerd.pid")"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	rm -f "$D/dockerd.pid" "$(sock)"
	# The daemon leaves the host network's sandbox (an nsfs bind mount
	# under exec-root/netns) mounted after it exits; a later rm -rf of the
	# checkout would then fail with "Device or resource busy".
	local ex m
	ex="$(exec_root)"
	while read -r _ m _; do
		if [[ $m == "$ex"/* ]]; then
			umount -l "$m" 2>/dev/null || say "could not unmount $m"
		fi
	done </proc/self/mounts
}

run() {
	[[ ${1:-} == -- ]] && shift
	(($# > 0)) || die "run: no command after --"
	local why
	why="$(unavailable)"
	if [[ -n $why ]]; then
		[[ ${FLEUTANBEAT_REQUIRE_DOCKER:-} == 1 ]] && die "no Docker engine ($why) and FLEUTANBEAT_REQUIRE_DOCKER=1"
		say "no Docker engine ($why): Elasticsearch runs as a process"
		# A DOCKER_HOST of the caller's own would make the scripts build
		# the image, which needs root for debootstrap.
		exec env -u DOCKER_HOST "$@"
	fi
	trap stop EXIT
	local host
	host="$(start)" || die "dockerd did not start"
	local rc=0
	# testcontainers-go's reaper image cannot be pulled here; the tests
	# remove their containers, and stop above removes any left over.
	DOCKER_HOST="$host" TESTCONTAINERS_RYUK_DISABLED=true "$@" || rc=$?
	exit "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
start) start ;;
stop) stop ;;
run) run "$@" ;;
docker) cli "$@" ;;
*) die "usage: $0 start | stop | run -- cmd... | docker ARGS..." ;;
esac
