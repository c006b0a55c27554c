#!/usr/bin/env bash
# The kernel matrix: the kernel-facing test packages, run as root inside
# Debian's 5.10 (bullseye), 6.1 (bookworm) and 6.12 (trixie) kernels booted
# in qemu with software emulation. Prints a table kernel x package and exits
# non-zero on any failure.
#
#   .ci/kernels.sh run      fetch (cached), build, boot every kernel, report
#   .ci/kernels.sh fetch    only fetch and unpack the kernels
#   .ci/kernels.sh readme   rewrite README's table from .ci/kernels-matrix.tsv
#   .ci/kernels.sh check-readme   fail when README's table is not that one
#
# Everything it downloads or builds lives under .kernels/ (ignored), kept
# between runs. The guest is assembled from layers so other VM tests can
# reuse the harness:
#   - a guest root (GUEST_ROOT: a directory; default: busybox-static plus
#     iproute2's ip/tc/ss with their libraries, built here; a debootstrap
#     tree works as well when its /init is set up by the caller),
#   - the kernel's modules (MODULES, loaded in dependency order at boot),
#   - a payload directory copied to /fbt (test binaries, testdata),
#   - a script run inside as root (GUEST_SCRIPT; its output goes to the
#     second serial port and comes back as the results file),
#   - extra directory trees laid over the root last (EXTRA_LAYERS: a .deb
#     to install, tools, configuration).
#
# Variables: KERNELS (suites, default "bullseye bookworm trixie"), PKGS (Go
# packages to test in the guest; "none" for none), RESULTS_DIR (default
# .kernels/results), MODULES, GUEST_ROOT, GUEST_SCRIPT, EXTRA_LAYERS,
# GUEST_MEM (MiB), GUEST_CPUS, VM_TIMEOUT (seconds per boot), TEST_TIMEOUT
# (per package, go duration), GUEST_SILENCE (seconds without test output
# after which a guest is stopped as wedged), GUEST_LOGLEVEL (guest console),
# GUEST_ACCEL (qemu -accel), VM_LOCK (a lock file the boots wait for), RDMA_TOOLS (suites whose
# guests get the rdma-core user-space layer of their own suite; default:
# every kernel), FLEUTANBEAT_RDMA_RECORD (passed into the guest).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
K=${KERNELS_DIR:-$ROOT/.kernels}
KERNELS=${KERNELS:-bullseye bookworm trixie}
# The mirror this machine's apt uses (any Debian mirror carries all three),
# read from its sources (deb822 .sources or one-line sources.list).
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done
	# An if, not &&: without a sources.list the function must still
	# succeed (set -e and pipefail would end the script silently).
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $2 !~ /security/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' /etc/apt/sources.list
	fi
}
MIRROR=${MIRROR:-$(apt_mirror | head -n 1)}
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
GUEST_MEM=${GUEST_MEM:-2048}
GUEST_CPUS=${GUEST_CPUS:-2}
VM_TIMEOUT=${VM_TIMEOUT:-900}
TEST_TIMEOUT=${TEST_TIMEOUT:-4m}
# Seconds without a byte of test output after which a guest counts as
# wedged and is stopped: above TEST_TIMEOUT, whose dump is output.
GUEST_SILENCE=${GUEST_SILENCE:-300}
GUEST_LOGLEVEL=${GUEST_LOGLEVEL:-6}
# qemu's -accel. tcg,thread=single runs the guest CPUs in one host
# thread, in turns; plain tcg gives each its own thread (MTTCG). With
# MTTCG on this loaded 2-core host, guests froze for good when an eBPF
# program was attached to or detached from sched_switch (the kernel
# patches that hot tracepoint's code while the other CPU runs it): 3
# freezes (5.10 twice, 6.1 once) in 11 boots, 6 of them with every
# package; none in 6 boots in one thread, 3 of them with every package.
GUEST_ACCEL=${GUEST_ACCEL:-tcg,thread=single}
# Netlink socket diagnostics, veth, tun (the paths tests delay a link
# through a TUN device), the qdisc kinds the host kernel lacks and
# the ones the tests build. Modules a kernel has built in are skipped.
MODULES=${MODULES:-veth tun inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag sch_fq_codel sch_fq sch_cake sch_mqprio sch_htb sch_prio sch_tbf sch_sfq sch_ingress cls_u32 cls_matchall act_mirred}
# Soft-RoCE (its ICRC is crypto "crc32", which it requests without a module
# dependency) and the user verbs and RDMA CM character devices, for the rdma
# input's tests (its tools come from the RDMA_TOOLS layer).
MODULES="$MODULES ${RDMA_MODULES-crc32_generic rdma_rxe ib_uverbs rdma_ucm}"
RDMA_TOOLS=${RDMA_TOOLS-$KERNELS}

log() { printf 'kernels: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# need installs what a fresh machine lacks, through the machine's own apt.
need() {
	local missing=() cmd pkg
	for pair in "$@"; do
		cmd=${pair%%:*} pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return
	install_pkgs "${missing[@]}"
}

install_pkgs() {
	log "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}

deps() {
	need qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod modprobe:kmod ldd:libc-bin \
		xz:xz-utils zstd:zstd ip:iproute2 tc:iproute2 ss:iproute2 sysctl:procps setpriv:util-linux flock:util-linux dpkg-deb:dpkg apt-get:apt
	# The guest has no libc of its own: busybox must be the static build
	# (Debian's busybox package is dynamic; busybox-static replaces it).
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then install_pkgs busybox-static; fi
	# The kernel packages' signatures are checked against Debian's keys.
	[ -f "$KEYRING" ] || install_pkgs debian-archive-keyring
}

# apt for one suite, with its own sources list, lists and cache under .kernels/apt:
# the machine's apt setup stays as it is.
suite_apt() {
	local suite=$1; shift
	local d=$K/apt/$suite
	[ -n "$MIRROR" ] || die "no Debian mirror in this machine's apt sources; set MIRROR"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	echo "deb [arch=amd64 signed-by=$KEYRING] $MIRROR $suite main" >"$d/sources.list"
	"$@" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o APT::Architecture=amd64 \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root
}

# fetch leaves .kernels/SUITE/{vmlinuz,release,root/} for each suite.
fetch() {
	local suite=$1
	local d=$K/$suite
	[ -s "$d/release" ] && [ -f "$d/vmlinuz" ] && return
	log "$suite: fetching the kernel package"
	suite_apt "$suite" apt-get update -qq >&2
	local pkg
	pkg=$(suite_apt "$suite" apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$pkg" ] || die "$suite: no linux-image-* behind linux-image-amd64"
	rm -rf "$d" && mkdir -p "$d/deb"
	(cd "$d/deb" && suite_apt "$suite" apt-get download -qq "$pkg" >&2)
	dpkg-deb -x "$d"/deb/*.deb "$d/root"
	local vmlinuz
	vmlinuz=$(ls "$d"/root/boot/vmlinuz-*)
	cp "$vmlinuz" "$d/vmlinuz"
	ls "$d/root/lib/modules" 2>/dev/null >"$d/release" || ls "$d/root/usr/lib/modules" >"$d/release"
	[ -d "$d/root/lib/modules" ] || { mkdir -p "$d/root/lib" && ln -s ../usr/lib/modules "$d/root/lib/modules"; }
	depmod -b "$d/root" "$(cat "$d/release")"
	log "$suite: $(cat "$d/release") ($pkg)"
}

# modules_layer builds .kernels/SUITE/modules/: the wanted modules and their
# dependencies, decompressed (busybox's insmod reads plain .ko), with a load
# order file, and a modules.dep for modprobe requests from the kernel.
modules_layer() {
	local suite=$1 rel
	local d=$K/$suite
	rel=$(cat "$d/release")
	local out=$d/modules
	rm -rf "$out" && mkdir -p "$out/lib/modules/$rel"
	: >"$out/lib/modules/load.list"
	local m line f dst
	for m in $MODULES; do
		modprobe -d "$d/root" -S "$rel" --show-depends "$m" 2>/dev/null | while read -r line; do
			case $line in
			insmod\ *)
				f=${line#insmod }; f=${f%% *}
				dst=${f#"$d"/root}; dst=${dst#/usr}
				dst=${dst%.xz}; dst=${dst%.zst}
				[ -f "$out$dst" ] && continue
				mkdir -p "$(dirname "$out$dst")"
				case $f in
				*.xz) xz -dc "$f" >"$out$dst" ;;
				*.zst) zstd -qdc "$f" >"$out$dst" ;;
				*) cp "$f" "$out$dst" ;;
				esac
				echo "$dst" >>"$out/lib/modules/load.list"
				;;
			esac
		done
	done
	cp "$d/root/lib/modules/$rel"/modules.{order,builtin,builtin.modinfo} "$out/lib/modules/$rel/" 2>/dev/null || true
	depmod -b "$out" "$rel"
}

# rdma_layer builds .kernels/SUITE/rdma-tools/: rdma-core's user space of
# the guest's own suite (rping, ibv_rc_pingpong, the rxe verbs provider and
# its /etc/libibverbs.d entry, their libraries), unpacked from the suite's
# packages. The suite's libc comes along only when it is newer than this
# machine's, whose libc the guest root's tools use: it then replaces that
# one (libc runs programs built against older ones, not newer).
rdma_layer() {
	local suite=$1
	local d=$K/$suite/rdma-tools
	[ -f "$d/.done" ] && return
	log "$suite: fetching rdma-core's tools"
	suite_apt "$suite" apt-get update -qq >&2
	local deb=$K/$suite/rdma-debs
	rm -rf "$d" "$deb" && mkdir -p "$d" "$deb"
	# Libraries renamed by the 64-bit time_t transition (trixie) carry t64.
	local p pkgs=()
	# libgcc-s1: glibc dlopens it for pthread_exit, which rping calls.
	for p in rdmacm-utils ibverbs-utils ibverbs-providers librdmacm1 libibverbs1 libnl-3-200 libnl-route-3-200 libgcc-s1 libc6; do
		if suite_apt "$suite" apt-cache show "${p}t64" >/dev/null 2>&1; then p=${p}t64; fi
		# The suite's own version, even where this machine has a newer one
		# installed (apt's candidate).
		pkgs+=("$p/$suite")
	done
	(cd "$deb" && suite_apt "$suite" apt-get download -qq "${pkgs[@]}" >&2)
	local f
	for f in "$deb"/*.deb; do
		case $(basename "$f") in libc6_*) continue ;; esac
		dpkg-deb -x "$f" "$d"
	done
	local libc want have
	libc=$(ls "$deb"/libc6_*.deb)
	want=$(dpkg-deb -f "$libc" Version)
	have=$(dpkg-query -W -f '${Version}' libc6)
	if dpkg --compare-versions "$want" gt "$have"; then
		local tmp
		tmp=$(mktemp -d)
		dpkg-deb -x "$libc" "$tmp"
		# The guest root holds this machine's libc where its ldd found it
		# (/lib/x86_64-linux-gnu, /lib64): the new one goes in its place.
		mkdir -p "$d/lib/x86_64-linux-gnu" "$d/lib64"
		for f in "$tmp"/usr/lib/x86_64-linux-gnu "$tmp"/lib/x86_64-linux-gnu; do
			[ -d "$f" ] && [ ! -L "$f" ] && cp -a "$f"/. "$d/lib/x86_64-linux-gnu/"
		done
		cp -L "$d/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$d/lib64/ld-linux-x86-64.so.2"
		rm -rf "$tmp"
	else
		# Programs built against a libc before 2.34 link its parts that
		# later ones merged (libpthread, libdl, librt), which the guest
		# root's tools do not need: this machine's are added.
		mkdir -p "$d/lib/x86_64-linux-gnu"
		for f in libpthread.so.0 libdl.so.2 librt.so.1; do
			[ -e "/lib/x86_64-linux-gnu/$f" ] && cp -L "/lib/x86_64-linux-gnu/$f" "$d/lib/x86_64-linux-gnu/$f"
		done
	fi
	rm -rf "$d/usr/share"
	touch "$d/.done"
}

# busybox_root is the default guest root: busybox-static, iproute2's tools
# procps' sysctl and util-linux's setpriv with their shared libraries from this machine, and an /init that mounts
# what the tests use, loads the modules and runs /fbt/guest.sh.
busybox_root() {
	local r=$K/guest-root
	rm -rf "$r" && mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,var/tmp}
	# The guest has no libc of its own for busybox: it must be static.
	ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamic: apt-get install busybox-static"
	cp /bin/busybox "$r/bin/busybox"
	local t lib
	# procps' sysctl: busybox's takes neither -q nor several keys;
	# util-linux's setpriv: busybox's has no --bounding-set.
	for t in ip tc ss sysctl setpriv; do
		cp "$(command -v $t)" "$r/sbin/$t"
		for lib in $(ldd "$(command -v $t)" | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}'); do
			mkdir -p "$r$(dirname "$lib")"
			cp -L "$lib" "$r$lib"
		done
	done
	# tc's distribution tables and the dynamic loader's home.
	[ -d /usr/lib/tc ] && mkdir -p "$r/usr/lib" && cp -r /usr/lib/tc "$r/usr/lib/tc"
	[ -e "$r/lib64" ] || { mkdir -p "$r/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"; }
	for t in $(/bin/busybox --list-full); do
		[ -e "$r/$t" ] || ln -s /bin/busybox "$r/$t"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
	cat >"$r/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t tmpfs run /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname fbt-guest
ip link set lo up
while read -r m; do insmod "$m" || echo "init: insmod $m failed" >/dev/ttyS1; done </lib/modules/load.list
echo /sbin/modprobe >/proc/sys/kernel/modprobe
sh /fbt/guest.sh >/dev/ttyS1 2>&1
echo "@@FBT-DONE $?" >/dev/ttyS1
sync
poweroff -f
EOF
	chmod 755 "$r/init"
	echo "$r"
}

# test_pkgs lists the packages whose tests talk to the kernel: every
# package under input/ with tests, and any other package whose tests use
# input/nstest (root, namespaces), except: cmd/fleutanbeat (its tests build
# the agent with the go tool, which the guest does not have), kibana (its
# kernel tests feed Elasticsearch) and config (root only to chown a file).
test_pkgs() {
	# PKGS=none: no test binaries (a guest script that tests something else).
	if [ "${PKGS:-}" = none ]; then return; fi
	if [ -n "${PKGS:-}" ]; then
		echo "$PKGS" | tr ' ' '\n'
		return
	fi
	{
		go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./input/...
		go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}{{end}}' ./... |
			awk '/input\/nstest/ {print $1}'
	} | grep -v -e '/cmd/fleutanbeat$' -e '/cmd/fleutanbeat/packaging$' -e '/kibana$' -e '/config$' | sort -u
}

# payload builds .kernels/payload/fbt/: one static test binary per package next
# to a copy of its testdata (tests run in their package directory), the
# shipped config, bin/fleutanbeat, bin/fleutan and bin/libuser, and the
# guest script.
payload() {
	local p=$K/payload/fbt mod
	rm -rf "$K/payload" && mkdir -p "$p/src" "$p/bin"
	mod=$(go list -m)
	CGO_ENABLED=0 go build -trimpath -o "$p/bin/fleutanbeat" ./cmd/fleutanbeat
	CGO_ENABLED=0 go build -trimpath -o "$p/bin/fleutan" ./cmd/fleutan
	# input/libtest's program is a module of its own, built as its test
	# builds it (which the guest, without a go tool, cannot).
	local lu
	lu=$(mktemp -d)
	cp input/libtest/testdata/libuser/go.mod input/libtest/testdata/libuser/main.go go.sum "$lu/"
	(cd "$lu" && go mod edit -replace "$mod=$ROOT" &&
		GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$p/bin/libuser" .)
	rm -rf "$lu"
	cp fleutanbeat.yml go.mod "$p/src/"
	local pkg rel
	: >"$p/pkgs"
	for pkg in $(test_pkgs); do
		rel=${pkg#"$mod"/}
		mkdir -p "$p/src/$rel"
		CGO_ENABLED=0 go test -c -trimpath -o "$p/src/$rel/pkg.test" "$pkg"
		[ -d "$rel/testdata" ] && cp -r "$rel/testdata" "$p/src/$rel/"
		echo "$rel" >>"$p/pkgs"
	done
	cp "${GUEST_SCRIPT:-.ci/kernels-guest.sh}" "$p/guest.sh"
	echo "TEST_TIMEOUT=$TEST_TIMEOUT" >"$p/env"
	# FLEUTANBEAT_RDMA_RECORD=1 makes the rdma input's recording test print
	# the events kibana/testdata/rdma-events.ndjson is made of.
	[ -z "${FLEUTANBEAT_RDMA_RECORD:-}" ] || echo "export FLEUTANBEAT_RDMA_RECORD=$FLEUTANBEAT_RDMA_RECORD" >>"$p/env"
}

cpio_of() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet); }

# cpio_over ROOT LAYER is cpio_of LAYER as it must be laid over ROOT. The
# kernel's unpacker replaces an entry by one of another type: a layer's
# lib/ directory would replace a merged-/usr root's lib -> usr/lib link
# (and with it the dynamic loader). A top-level directory that ROOT has as
# a relative link therefore goes to the link's target.
cpio_over() {
	local root=$1 layer=$2 top target moved=
	for top in "$layer"/*; do
		top=${top##*/}
		if [ -d "$layer/$top" ] && [ -L "$root/$top" ]; then moved=1; fi
	done
	[ -n "$moved" ] || { cpio_of "$layer"; return; }
	local stage
	stage=$(mktemp -d)
	cp -a "$layer/." "$stage/"
	for top in "$layer"/*; do
		top=${top##*/}
		[ -d "$layer/$top" ] && [ -L "$root/$top" ] || continue
		target=$(readlink "$root/$top")
		case $target in /*) die "$root/$top links to an absolute path: $target" ;; esac
		rm -rf "${stage:?}/$top"
		mkdir -p "$stage/$target"
		cp -a "$layer/$top/." "$stage/$target/"
	done
	cpio_of "$stage"
	rm -rf "$stage"
}

# boot runs one kernel with the layers concatenated into one initramfs (the
# kernel unpacks concatenated cpio archives in order), console on the first
# serial port, results on the second.
boot() {
	local suite=$1 out=$2
	local d=$K/$suite
	local initrd=$K/initrd-$suite.cpio
	{
		cpio_of "$GUEST_ROOT_DIR"
		cpio_over "$GUEST_ROOT_DIR" "$d/modules"
		# Symbolic links stay links: testdata holds /proc fixtures whose
		# exe links point nowhere.
		cpio_over "$GUEST_ROOT_DIR" "$K/payload"
		local layer
		for layer in ${EXTRA_LAYERS:-}; do cpio_over "$GUEST_ROOT_DIR" "$layer"; done
		case " $RDMA_TOOLS " in *" $suite "*) cpio_over "$GUEST_ROOT_DIR" "$d/rdma-tools" ;; esac
	} >"$initrd"
	log "$suite: booting $(cat "$d/release") ($(du -m "$initrd" | cut -f1) MiB initramfs)"
	local start=$SECONDS rc=0
	local res=$out/results-$suite.log
	: >"$res"
	# loglevel 6: a stall or lockup report comes with the stacks
	# (sched_show_task prints at KERN_INFO), module loads stay quiet.
	timeout "$VM_TIMEOUT" qemu-system-x86_64 -accel "$GUEST_ACCEL" -cpu max -smp "$GUEST_CPUS" -m "$GUEST_MEM" \
		-nographic -no-reboot -nic none -monitor none \
		-kernel "$d/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=$GUEST_LOGLEVEL rdinit=/init" \
		-serial "file:$out/console-$suite.log" -serial "file:$res" \
		</dev/null >/dev/null 2>"$out/qemu-$suite.err" &
	local qpid=$! size=-1 still=0
	# A guest whose results stop growing for longer than a package may
	# take (its -test.timeout ends a hung test binary with a dump, which
	# is output) is wedged in its kernel: stop it now rather than at
	# VM_TIMEOUT, and say so in the results for the report.
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 5
		local now
		now=$(stat -c %s "$res" 2>/dev/null || echo 0)
		if [ "$now" != "$size" ]; then size=$now still=0; else still=$((still + 5)); fi
		if [ "$still" -ge "$GUEST_SILENCE" ]; then
			log "$suite: no test output for $GUEST_SILENCE s: the guest is wedged, stopping it (see $out/console-$suite.log)"
			kill "$qpid" 2>/dev/null
			break
		fi
	done
	wait "$qpid" || rc=$?
	[ "$still" -lt "$GUEST_SILENCE" ] || printf '\n@@FBT-WEDGED no output for %s s\n' "$GUEST_SILENCE" >>"$res"
	echo "$((SECONDS - start))" >"$out/seconds-$suite"
	rm -f "$initrd"
	[ $rc -eq 0 ] || log "$suite: qemu exit $rc (timeout is 124), see $out/console-$suite.log"
}

run() {
	# qemu needs no root, but installing what is missing and the tests
	# inside (namespaces, eBPF) are run as root by the guest's init from
	# an initramfs this script builds with root's tools.
	if [ "$(id -u)" != 0 ]; then
		[ "${FLEUTANBEAT_REQUIRE_ROOT:-}" != 1 ] || die "not root and FLEUTANBEAT_REQUIRE_ROOT=1: the kernel matrix needs root"
		log "skipped: the kernel matrix needs root (FLEUTANBEAT_REQUIRE_ROOT=1 makes this a failure)"
		return 0
	fi
	deps
	local s
	for s in $KERNELS; do fetch "$s"; done
	for s in $KERNELS; do modules_layer "$s"; done
	for s in $RDMA_TOOLS; do rdma_layer "$s"; done
	GUEST_ROOT_DIR=${GUEST_ROOT:-$(busybox_root)}
	payload
	local out=${RESULTS_DIR:-$K/results}
	rm -rf "$out" && mkdir -p "$out"
	# One VM at a time: software emulation takes every core it is given.
	# VM_LOCK names a lock file that concurrent runs on one machine (CI
	# jobs, other VM tests) share: the boots wait for it.
	if [ -n "${VM_LOCK:-}" ]; then
		exec 9>>"$VM_LOCK"
		log "waiting for $VM_LOCK"
		flock 9
	fi
	local start=$SECONDS
	for s in $KERNELS; do boot "$s" "$out"; done
	[ -z "${VM_LOCK:-}" ] || flock -u 9
	log "matrix wall time: $((SECONDS - start)) s"
	local rels=()
	for s in $KERNELS; do rels+=("$s=$(cat "$K/$s/release")"); done
	local rc=0
	sh .ci/kernels-report.sh "$out" "${rels[@]}" || rc=$?
	# A full run records its features for the README's "Supported kernels"
	# table (make check-kernels-table compares the two).
	if [ -z "${PKGS:-}" ] && [ "$KERNELS" = "bullseye bookworm trixie" ]; then
		cp "$out/matrix.tsv" .ci/kernels-matrix.tsv
		readme_table
	fi
	return $rc
}

# readme_table replaces the table between the README's kernels-table
# markers with the one generated from .ci/kernels-matrix.tsv.
readme_table() {
	local table
	table=$(sh .ci/kernels-readme.sh .ci/kernels-matrix.tsv)
	awk -v table="$table" '
	/<!-- kernels-table:end -->/ { print table; skip = 0 }
	!skip { print }
	/<!-- kernels-table:begin -->/ { skip = 1 }
	' README.md >README.md.tmp && mv README.md.tmp README.md
}

# In braces with exit: bash reads a script as it runs, so an edit during a
# long run must not change what runs after it.
{
	case ${1:-run} in
	run) run ;;
	fetch) deps && for s in $KERNELS; do fetch "$s"; done ;;
	readme) readme_table ;;
	check-readme)
		diff -u <(sh .ci/kernels-readme.sh .ci/kernels-matrix.tsv) \
			<(awk '/<!-- kernels-table:end -->/ {p = 0} p; /<!-- kernels-table:begin -->/ {p = 1}' README.md) ||
			die "README's Supported kernels table differs from .ci/kernels-matrix.tsv: run .ci/kernels.sh readme"
		;;
	*) die "usage: $0 run|fetch" ;;
	esac
	exit
}
