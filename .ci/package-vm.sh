#!/usr/bin/env bash
# The .deb under a real systemd: Debian's 6.1 (bookworm) and 6.12 (trixie)
# kernels booted in qemu (the kernel-matrix harness, .ci/kernels.sh) with a
# Debian bookworm root from debootstrap whose init is systemd. Inside, as a
# new user would (.ci/package-guest.sh): the agent without the sock_diag
# modules and without kmod (its once-logged explanation, the other inputs
# still publishing), then dpkg -i of `make package`'s .deb, the service's
# capabilities, a test flow attributed to its process, systemctl restart
# with 0 undelivered, an upgrade to a version-bumped .deb, dpkg -r, purge
# and systemd-analyze security. Prints a table kernel x step group like
# the matrix and exits non-zero on any failure.
#
#   .ci/package-vm.sh           build, boot every kernel, report
#   .ci/package-vm.sh rootfs    only make (once) the Debian root; prints its path
#
# Variables: KERNELS (default "bookworm trixie"), VM_LOCK (below), and
# those of kernels.sh.
# The Debian root is cached under .kernels/pkgroot, named by the hash of
# what makes it; results go to .kernels/package-results.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
K=${KERNELS_DIR:-$ROOT/.kernels}
export KERNELS=${KERNELS:-bookworm trixie}
# systemd's boot prints nothing on the results port: allow it more than
# the matrix's silence.
export GUEST_SILENCE=${GUEST_SILENCE:-600}
ROOTFS_SUITE=bookworm
# systemd to run the unit; adduser for the postinst; curl and jq to read
# /stats and the events; netcat-openbsd holds the test connection;
# iproute2's ss for the record. No kmod: nothing in the guest can load a
# module (the init script uses busybox's insmod from /fbt).
ROOTFS_PACKAGES=systemd,dbus,adduser,curl,jq,netcat-openbsd,iproute2,procps

log() { printf 'package-vm: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Same rule as kernels.sh: the mirror of this machine's apt sources.
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $2 !~ /security/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' /etc/apt/sources.list
	fi
}

# rootfs makes .kernels/pkgroot/root-SUITE-KEY/ once: debootstrap of
# ROOTFS_SUITE with ROOTFS_PACKAGES; KEY hashes those and this function.
rootfs() {
	local key dir
	key=$(printf '%s\n%s\n%s\n' "$ROOTFS_SUITE" "$ROOTFS_PACKAGES" "$(declare -f rootfs)" | sha256sum | cut -c1-16)
	dir=$K/pkgroot/root-$ROOTFS_SUITE-$key
	if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
	command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
	local mirror=${MIRROR:-$(apt_mirror | head -n 1)}
	[ -n "$mirror" ] || die "no Debian mirror in this machine's apt sources; set MIRROR"
	mkdir -p "$K/pkgroot"
	local tmp
	tmp=$(mktemp -d "$K/pkgroot/.build.XXXXXX")
	log "debootstrap $ROOTFS_SUITE with $ROOTFS_PACKAGES from $mirror"
	local t0=$SECONDS
	debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$ROOTFS_SUITE" "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
		{ tail -n 30 "$tmp.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
	rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/usr/share/doc "$tmp"/usr/share/man "$tmp"/usr/share/locale
	echo fbt-guest >"$tmp/etc/hostname"
	# A console login would only wait on the serial port.
	ln -sfn /dev/null "$tmp/etc/systemd/system/serial-getty@.service"
	ln -sfn /dev/null "$tmp/etc/systemd/system/getty@.service"
	touch "$tmp/.complete"
	rm -rf "$dir" "$tmp.log"
	mv "$tmp" "$dir"
	log "root $dir made in $((SECONDS - t0)) s"
	echo "$dir"
}

# layer builds the tree laid over the root: /init (modules, then systemd),
# the unit that runs the guest script once the system is up, busybox for
# insmod, and the two packages.
layer() {
	local l=$1 deb1=$2 deb2=$3
	rm -rf "$l" && mkdir -p "$l/debs" "$l/usr/local/lib/fbt" "$l/etc/systemd/system/multi-user.target.wants"
	cp "$deb1" "$l/debs/1.deb"
	cp "$deb2" "$l/debs/2.deb"
	dpkg-deb -f "$deb1" Version >"$l/debs/1.version"
	dpkg-deb -f "$deb2" Version >"$l/debs/2.version"
	# The capabilities the README documents for the unit: the rows of the
	# packaging README's table, less "not needed" and CAP_SYS_ADMIN (only
	# for namespaces: all, added by the operator).
	awk -F '|' '$2 ~ /CAP_/ && $3 !~ /not needed/ {
		n = split($2, w, /[`, ]+/); for (i = 1; i <= n; i++) if (w[i] ~ /^CAP_/ && w[i] != "CAP_SYS_ADMIN") print w[i] }' \
		cmd/fleutanbeat/packaging/README.md | sort -u >"$l/debs/caps"
	[ -s "$l/debs/caps" ] || die "no capabilities found in cmd/fleutanbeat/packaging/README.md"
	ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamic: apt-get install busybox-static"
	cp /bin/busybox "$l/usr/local/lib/fbt/busybox"
	cat >"$l/init" <<'EOF'
#!/bin/sh
# Loads the modules kernels.sh put in the image, except the sock_diag ones
# (the guest script loads those after its missing-module test), and
# starts systemd. The root has no kmod: the kernel's autoloading has no
# modprobe to run.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
while read -r m; do
	case $m in
	*/inet_diag.ko | */tcp_diag.ko | */udp_diag.ko | */raw_diag.ko) echo "$m" >>/lib/modules/deferred.list ;;
	*) /usr/local/lib/fbt/busybox insmod "$m" || echo "init: insmod $m failed" ;;
	esac
done </lib/modules/load.list
echo /sbin/modprobe >/proc/sys/kernel/modprobe
exec /lib/systemd/systemd
EOF
	chmod 755 "$l/init"
	cat >"$l/etc/systemd/system/fbt-guest.service" <<'EOF'
[Unit]
Description=fleutanbeat package test
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh -c 'bash /fbt/guest.sh >/dev/ttyS1 2>&1; echo "@@FBT-DONE $?" >/dev/ttyS1; sync; systemctl poweroff --force --force'

[Install]
WantedBy=multi-user.target
EOF
	ln -sfn ../fbt-guest.service "$l/etc/systemd/system/multi-user.target.wants/fbt-guest.service"
}

run() {
	# VM_LOCK: a file to hold with flock(1) for the run, where several VM
	# tests share a machine's cores.
	if [ -n "${VM_LOCK:-}" ] && [ -z "${VM_LOCKED:-}" ]; then
		VM_LOCKED=1 exec flock "$VM_LOCK" "$0" run
	fi
	local root out w=$K/package-work t0=$SECONDS
	root=$(rootfs)
	mkdir -p "$w"
	# The .deb of `make package`, and the same with the version bumped for
	# the upgrade.
	make -s package DEB_OUT="$w/debs" >/dev/null
	local deb1 v1 deb2
	deb1=$(ls -t "$w"/debs/fleutanbeat_*.deb | head -n 1)
	v1=$(dpkg-deb -f "$deb1" Version)
	deb2=$(sh cmd/fleutanbeat/packaging/build-deb.sh bin/fleutanbeat "$v1+1" "$w/debs-next")
	layer "$w/layer" "$deb1" "$deb2"
	out=$K/package-results
	local rc=0
	# No soft-RoCE here: the rdma tools layer would lay its suite's libc
	# over the installed system's.
	RDMA_TOOLS= RDMA_MODULES= PKGS=none GUEST_ROOT=$root GUEST_SCRIPT=.ci/package-guest.sh EXTRA_LAYERS="$w/layer" \
		GUEST_MEM=${GUEST_MEM:-3072} RESULTS_DIR=$out .ci/kernels.sh run || rc=$?
	local s
	for s in $KERNELS; do
		[ -f "$out/results-$s.log" ] || continue
		echo
		echo "== $s: systemd-analyze security fleutanbeat"
		awk '/^@@FBT-SECURITY-BEGIN/ {p = 1; next} /^@@FBT-SECURITY-END/ {p = 0} p' "$out/results-$s.log" | tr -d '\r'
		echo "== $s: the missing-module log lines"
		awk '/^@@FBT-MISSING-BEGIN/ {p = 1; next} /^@@FBT-MISSING-END/ {p = 0} p' "$out/results-$s.log" | tr -d '\r'
	done
	log "wall time $((SECONDS - t0)) s"
	return $rc
}

{
	case ${1:-run} in
	run) run ;;
	rootfs) rootfs ;;
	*) die "usage: $0 [run|rootfs]" ;;
	esac
	exit
}
