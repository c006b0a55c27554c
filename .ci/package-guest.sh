# Runs inside the package test's guest (see .ci/package-vm.sh) as root,
# under systemd, once the system is up; bash. Prints its results in the
# go test framing that .ci/kernels-report.sh reads: one @@FBT-PKG group
# per stage, one "--- PASS/FAIL" per check, failures with their reason.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive
echo "@@FBT-KERNEL $(uname -r) cpus=$(nproc)"
echo "systemd: $(systemctl is-system-running) $(systemctl --version | head -n 1)"

group= gstart= gfail=0 step= sfail=0
begin() { group=$1 gstart=$(date +%s) gfail=0; echo "@@FBT-PKG package/$group"; }
end() { echo "@@FBT-END package/$group rc=$gfail seconds=$(($(date +%s) - gstart))"; }
check() { step=$1 sfail=0; echo "=== RUN   $step"; }
# The line of the check's call at the top level.
fail() { echo "    package-guest.sh:${BASH_LINENO[${#BASH_LINENO[@]} - 2]}: $*"; sfail=1; }
done_() {
	if [ "$sfail" = 0 ]; then echo "--- PASS: $step (0.00s)"; else echo "--- FAIL: $step (0.00s)"; gfail=1; fi
}
# expect DESC GOT WANT
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
	local t=$1; shift
	local end=$(($(date +%s) + t))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 1
	done
}
# complete FILE: the lines of FILE the agent has finished writing (jq
# fails on a line still being written).
complete() { head -n "$(wc -l <"$1")" "$1"; }
stat_of() { curl -sf "http://127.0.0.1:$1/stats" | jq -r "$2"; }
stat_at_least() { local v; v=$(stat_of "$1" "$2") && [ "$v" != null ] && [ "$v" -ge "$3" ]; }

# A device with a queue for the qdisc input: loopback is left out by
# default and the guest has no network card.
ip link add fbt0 type veth peer name fbt1
ip link set fbt0 up
ip link set fbt1 up
tc qdisc replace dev fbt0 root fq_codel
tc qdisc show dev fbt0

# ---- without the sock_diag modules and without kmod ----------------------
begin missing-kernel-support
check NoModuleLoader
command -v modprobe >/dev/null && fail "a modprobe is installed: $(command -v modprobe)"
[ -e "$(cat /proc/sys/kernel/modprobe)" ] && fail "kernel.modprobe $(cat /proc/sys/kernel/modprobe) exists"
grep -E '^(inet|tcp|udp|raw)_diag ' /proc/modules && fail "sock_diag modules are loaded"
done_
mk=/tmp/missing
mkdir -p $mk
cat >$mk/fleutanbeat.yml <<'EOF'
fleutanbeat.inputs:
  - type: flows
    period: 1s
  - type: cpu
    period: 1s
  - type: qdisc
    period: 1s
http.enabled: true
http.host: 127.0.0.1
http.port: 5067
output.file:
  path: /tmp/missing/out
EOF
chmod 600 $mk/fleutanbeat.yml
fleutanbeat=/fbt/bin/fleutanbeat
$fleutanbeat run -e -c $mk/fleutanbeat.yml --path.data $mk/data 2>$mk/log &
pid=$!
check RunsWithoutSockDiag
wait_for 120 stat_at_least 5067 .input.flows.collections 5 || fail "flows did not complete 5 collections: $(curl -s 127.0.0.1:5067/stats | jq -c .input)"
wait_for 60 stat_at_least 5067 .input.cpu.collections 5 || fail "cpu did not complete 5 collections"
stats=$(curl -sf http://127.0.0.1:5067/stats)
kill -TERM $pid
wait $pid
expect "agent exit status" $? 0
done_
echo "@@FBT-MISSING-BEGIN"
grep -e sock_diag -e tcp_diag -e udp_diag $mk/log
echo "@@FBT-MISSING-END"
echo "/stats input: $(echo "$stats" | jq -c .input)"
check LoggedOncePerProtocolAndInput
for in in flows cpu; do
	for p in tcp udp; do
		n=$(jq -r --arg m "$in: the kernel cannot list ${p^^} sockets (sock_diag): load ${p}_diag (modprobe ${p}_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no ${p^^} sockets" \
			'select(.msg == $m)' $mk/log | jq -s length)
		expect "$in: lines about ${p}_diag" "$n" 1
	done
done
n=$(jq -r 'select(.msg | test("no such file or directory")) | 1' $mk/log | wc -l)
expect "messages that are a bare 'no such file or directory'" "$n" 0
done_
check FailuresCounted
for in in flows cpu; do
	c=$(echo "$stats" | jq -r ".input.$in.collections")
	u=$(echo "$stats" | jq -r ".input.$in.kernel_unsupported")
	# Every collection tried TCP and UDP over IPv4 and IPv6.
	[ "$u" != null ] && [ "$u" -ge $((4 * c)) ] || fail "$in: kernel_unsupported $u after $c collections, want >= $((4 * c))"
done
done_
check QdiscAndCpuStillPublish
for ds in fleutan.qdisc fleutan.cpu; do
	n=$(jq -r --arg ds $ds 'select(.event.dataset | startswith($ds)) | 1' < <(complete $mk/out/fleutanbeat.ndjson) | wc -l)
	[ "$n" -gt 0 ] || fail "no $ds events"
done
for in in qdisc cpu; do
	n=$(echo "$stats" | jq -r ".input.$in.events")
	[ "$n" -gt 0 ] || fail "/stats input.$in.events is $n"
done
done_
check StillNoModules
grep -E '^(inet|tcp|udp|raw)_diag ' /proc/modules && fail "a sock_diag module got loaded"
done_
end

# The sock_diag modules for the rest.
while read -r m; do /usr/local/lib/fbt/busybox insmod "$m" || echo "insmod $m failed"; done </lib/modules/deferred.list

# ---- dpkg -i ---------------------------------------------------------------
begin install
v1=$(cat /debs/1.version) v2=$(cat /debs/2.version)
check DpkgInstallWithoutWarnings
dpkg -i /debs/1.deb >/tmp/dpkg1.log 2>&1 || fail "dpkg -i failed: $(tail -n 5 /tmp/dpkg1.log)"
sed 's/^/    dpkg: /' /tmp/dpkg1.log
grep -i warning /tmp/dpkg1.log && fail "dpkg printed a warning"
expect "version" "$(dpkg-query -W -f '${Version}' fleutanbeat)" "$v1"
done_
check UserAndDirectories
getent passwd fleutanbeat >/dev/null || fail "no user fleutanbeat"
expect "/var/lib/fleutanbeat owner and mode" "$(stat -c '%U:%G %a' /var/lib/fleutanbeat)" "fleutanbeat:fleutanbeat 750"
expect "config owner and mode" "$(stat -c '%U %a' /etc/fleutanbeat/fleutanbeat.yml)" "root 600"
expect "enabled" "$(systemctl is-enabled fleutanbeat 2>&1)" disabled
expect "active after install" "$(systemctl is-active fleutanbeat 2>&1)" inactive
done_
end

# ---- the service -----------------------------------------------------------
begin service
# The operator's edit of the conffile: shorter periods and /stats.
cfg=/etc/fleutanbeat/fleutanbeat.yml
sed -i 's/period: 10s/period: 2s/' $cfg
cat >>$cfg <<'EOF'
# edited by the package test
http.enabled: true
http.host: 127.0.0.1
http.port: 5066
EOF
# A process holding a known TCP connection on loopback.
nc -l 127.0.0.1 7777 </dev/zero >/dev/null &
srv=$!
sleep 1
sleep 3600 | nc 127.0.0.1 7777 >/dev/null &
sleep 1
cli=$(pgrep -x -n nc)
check ServiceStarts
systemctl start fleutanbeat || fail "systemctl start failed"
wait_for 120 stat_at_least 5066 .input.flows.collections 3 || fail "flows: fewer than 3 collections: $(curl -s 127.0.0.1:5066/stats | jq -c .input)"
wait_for 60 stat_at_least 5066 .input.qdisc.collections 3 || fail "qdisc: fewer than 3 collections"
wait_for 60 stat_at_least 5066 .input.cpu.collections 3 || fail "cpu: fewer than 3 collections"
expect "active" "$(systemctl is-active fleutanbeat)" active
done_
mainpid=$(systemctl show -p MainPID --value fleutanbeat)
check Capabilities
expect "user" "$(stat -c %U /proc/$mainpid)" fleutanbeat
want=0
for c in $(cat /debs/caps); do
	n=$(awk -v c="$c" 'BEGIN { split("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE", n, " "); for (i in n) if ("CAP_" n[i] == c) print i - 1 }')
	[ -n "$n" ] || { fail "unknown capability $c"; continue; }
	want=$((want | (1 << n)))
done
want=$(printf '%016x' $want)
echo "    documented: $(tr '\n' ' ' </debs/caps)= $want"
for f in CapEff CapPrm CapAmb; do
	expect "$f" "$(awk -v f="$f:" '$1 == f {print $2}' /proc/$mainpid/status)" "$want"
done
grep ^Cap /proc/$mainpid/status | sed 's/^/    /'
done_
check EventsWithTheTestFlowsProcess
ev=/var/lib/fleutanbeat/fleutanbeat.ndjson
# The client's end: its flow goes to port 7777 and is the client's. (Not
# jq -e: jq 1.6 takes its status from the last input line only.)
has_flow() {
	complete $ev | jq -c --argjson pid "$cli" 'select(.event.dataset == "fleutan.flows" and .destination.port == 7777 and .process.pid == $pid and .process.name == "nc")' | grep -q .
}
if ! wait_for 90 has_flow; then
	fail "no flow event to port 7777 with process nc pid $cli"
	echo "    events of port 7777:"
	jq -c 'select(.event.dataset == "fleutan.flows" and (.destination.port == 7777 or .source.port == 7777)) | {process, user: .user.name, src: .source.port, dst: .destination.port}' < <(complete $ev) | tail -n 4 | sed 's/^/      /'
	echo "    unattributed: $(curl -s 127.0.0.1:5066/stats | jq -c .input.flows.unattributed)"
	ss -tnp | grep 7777 | sed 's/^/      /'
fi
jq -c --argjson pid $cli 'select(.event.dataset == "fleutan.flows" and .process.pid == $pid) | {process: .process.name, pid: .process.pid, user: .user.name, src: .source, dst: .destination}' < <(complete $ev) | head -n 1 | sed 's/^/    /'
for ds in fleutan.cpu fleutan.qdisc; do
	n=$(complete $ev | jq -r --arg ds $ds 'select(.event.dataset | startswith($ds)) | 1' | wc -l)
	[ "$n" -gt 0 ] || fail "no $ds events"
done
done_
check EBPFLoaded
j=$(journalctl -u fleutanbeat -o cat)
expect "cpu method" "$(stat_of 5066 .input.cpu.method)" ebpf
case $(stat_of 5066 .input.qdisc.flow_attribution) in
tracepoint | raw_tracepoint) ;;
*) fail "qdisc flow_attribution is $(stat_of 5066 .input.qdisc.flow_attribution)" ;;
esac
echo "$j" | head -n 8 | sed 's/^/    journal: /'
echo "$j" | grep -q '"method":"ebpf"' || fail "flows did not log method ebpf"
expect "input errors" "$(stat_of 5066 '[.input[].errors] | add')" 0
done_
# Under every sandboxing option of the unit, nothing is degraded: a
# refused call would be a warning (a missing capability, eBPF refused, a
# failed collection).
check NoWarningsUnderTheUnit
w=$(echo "$j" | grep -E '"level":"(WARN|ERROR)"')
[ -z "$w" ] || fail "the agent warned: $w"
done_
end

# ---- restart ---------------------------------------------------------------
begin restart
check RestartDeliversEverything
systemctl restart fleutanbeat || fail "systemctl restart failed"
line=$(journalctl -u fleutanbeat -o cat | grep '"msg":"fleutanbeat stopped"' | tail -n 1)
[ -n "$line" ] || fail "no 'fleutanbeat stopped' line in the journal"
expect "undelivered" "$(echo "$line" | jq -r .undelivered)" 0
expect "active after restart" "$(systemctl is-active fleutanbeat)" active
wait_for 60 stat_at_least 5066 .input.flows.collections 1 || fail "no collection after the restart"
done_
end

# ---- upgrade ---------------------------------------------------------------
begin upgrade
id1=$(jq -r .uuid /var/lib/fleutanbeat/meta.json)
check UpgradeKeepsConfigAndData
dpkg -i /debs/2.deb >/tmp/dpkg2.log 2>&1 || fail "dpkg -i of the newer version failed: $(tail -n 5 /tmp/dpkg2.log)"
sed 's/^/    dpkg: /' /tmp/dpkg2.log
grep -i warning /tmp/dpkg2.log && fail "dpkg printed a warning"
expect "version" "$(dpkg-query -W -f '${Version}' fleutanbeat)" "$v2"
grep -q '^# edited by the package test' $cfg || fail "the edited conffile was replaced"
expect "agent id" "$(jq -r .uuid /var/lib/fleutanbeat/meta.json)" "$id1"
[ -n "$id1" ] && [ "$id1" != null ] || fail "no agent id in meta.json: $(cat /var/lib/fleutanbeat/meta.json)"
expect "active after upgrade" "$(systemctl is-active fleutanbeat)" active
newpid=$(systemctl show -p MainPID --value fleutanbeat)
[ "$newpid" != "$mainpid" ] || fail "the upgrade did not restart the agent (pid $mainpid)"
wait_for 60 stat_at_least 5066 .input.flows.collections 1 || fail "no collection after the upgrade"
done_
end

# ---- systemd-analyze security ----------------------------------------------
begin security
check SecurityRecorded
echo "@@FBT-SECURITY-BEGIN"
systemd-analyze security --no-pager fleutanbeat
echo "@@FBT-SECURITY-END"
systemd-analyze security --no-pager fleutanbeat | grep -q 'Overall exposure level' || fail "no exposure level"
done_
end

# ---- remove and purge ------------------------------------------------------
begin remove-purge
kill $srv 2>/dev/null
check RemoveKeepsConfigDataUser
dpkg -r fleutanbeat >/tmp/dpkg3.log 2>&1 || fail "dpkg -r failed: $(tail -n 5 /tmp/dpkg3.log)"
sed 's/^/    dpkg: /' /tmp/dpkg3.log
grep -i warning /tmp/dpkg3.log && fail "dpkg printed a warning"
expect "active after remove" "$(systemctl is-active fleutanbeat 2>&1)" inactive
[ -e /usr/share/fleutanbeat/bin/fleutanbeat ] && fail "the binary is still there"
grep -q '^# edited by the package test' $cfg || fail "dpkg -r removed the config"
[ -f /var/lib/fleutanbeat/meta.json ] || fail "dpkg -r removed /var/lib/fleutanbeat"
getent passwd fleutanbeat >/dev/null || fail "dpkg -r removed the user"
done_
check PurgeRemovesConfigDataUser
dpkg -i /debs/2.deb >/tmp/dpkg4.log 2>&1 || fail "reinstall failed: $(tail -n 5 /tmp/dpkg4.log)"
grep -i warning /tmp/dpkg4.log && fail "dpkg printed a warning on reinstall"
apt-get purge -y fleutanbeat >/tmp/dpkg5.log 2>&1 || fail "apt-get purge failed: $(tail -n 5 /tmp/dpkg5.log)"
sed 's/^/    apt: /' /tmp/dpkg5.log
grep -i warning /tmp/dpkg5.log && fail "apt-get purge printed a warning"
[ -e /etc/fleutanbeat ] && fail "/etc/fleutanbeat is still there: $(ls -la /etc/fleutanbeat)"
[ -e /var/lib/fleutanbeat ] && fail "/var/lib/fleutanbeat is still there"
getent passwd fleutanbeat && fail "the user is still there"
getent group fleutanbeat && fail "the group is still there"
expect "dpkg status" "$(dpkg-query -W -f '${db:Status-Abbrev}' fleutanbeat 2>/dev/null)" ""
done_
end
