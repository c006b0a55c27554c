package packaging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// nobody is the unprivileged user of the privilege tests (Debian's
// nobody/nogroup).
const nobody = 65534

// agentRun is what one run of the agent left: its log and its events.
type agentRun struct {
	log    string
	events []map[string]any
}

// runUnprivileged starts the agent as nobody under setpriv with exactly
// the given capabilities (setpriv names: "sys_ptrace"), waits until done
// accepts the events written so far, and stops it with SIGTERM.
func runUnprivileged(t *testing.T, capNames []string, namespaces string, done func(agentRun) bool) agentRun {
	t.Helper()
	setpriv := requireTool(t, "setpriv", true)
	bin := buildBinary(t)
	home, err := os.MkdirTemp("", "fleutanbeat-caps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "fleutanbeat.yml")
	src := fmt.Sprintf(`fleutanbeat.inputs:
  - type: flows
    period: 1s
    namespaces: %s
    # Every socket every period: the tests count collections by a
    # listener's events.
    report: all
  - type: cpu
    period: 1s
  - type: qdisc
    period: 1s
output.file:
  path: %s
logging.metrics.enabled: false
queue.mem.flush.timeout: 100ms
`, namespaces, filepath.Join(home, "data"))
	// As packaged: root-owned and 0600, read through CAP_DAC_READ_SEARCH.
	// Without that capability the operator must give the file to the
	// service user, as here.
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(capNames, "dac_read_search") {
		if err := os.Chown(cfg, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	set := "-all"
	for _, c := range capNames {
		set += ",+" + c
	}
	cmd := exec.Command(setpriv, "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody), "--clear-groups",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set, "--",
		bin, "run", "-e", "-c", cfg, "--path.home", home)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	data := filepath.Join(home, "data", "fleutanbeat.ndjson")
	var r agentRun
	read := func() agentRun {
		r := agentRun{log: stderr.String()}
		b, _ := os.ReadFile(data)
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil {
				r.events = append(r.events, m)
			}
		}
		return r
	}
	deadline := time.Now().Add(30 * time.Second)
	for r = read(); !done(r); r = read() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the events; %d events, log:\n%s", len(r.events), r.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exited with %v; log:\n%s", err, stderr.String())
	}
	return read()
}

// dataset returns the events of one dataset.
func (r agentRun) dataset(ds string) []map[string]any {
	var out []map[string]any
	for _, e := range r.events {
		if d, _ := e["data_stream"].(map[string]any); d["dataset"] == ds {
			out = append(out, e)
		}
	}
	return out
}

// flowOn returns the flow event of the listener on port, nil if none.
func (r agentRun) flowOn(port int) map[string]any {
	for _, e := range r.dataset("fleutan.flows") {
		f, _ := e["fleutan"].(map[string]any)
		fl, _ := f["flow"].(map[string]any)
		loc, _ := fl["local"].(map[string]any)
		if p, _ := loc["port"].(float64); int(p) == port {
			return e
		}
	}
	return nil
}

// collections counts the flows periods that reported the listener on
// port: one event per period.
func (r agentRun) collections(port int) int {
	n := 0
	for _, e := range r.dataset("fleutan.flows") {
		f, _ := e["fleutan"].(map[string]any)
		fl, _ := f["flow"].(map[string]any)
		loc, _ := fl["local"].(map[string]any)
		if p, _ := loc["port"].(float64); int(p) == port {
			n++
		}
	}
	return n
}

// capLines are the messages of the log lines that name a capability.
func (r agentRun) capLines() []string {
	var out []string
	for _, m := range logLines(r.log) {
		if msg, _ := m["msg"].(string); strings.Contains(msg, "CAP_") {
			out = append(out, msg)
		}
	}
	slices.Sort(out)
	return out
}

func (r agentRun) logged(msg string) bool {
	for _, m := range logLines(r.log) {
		if m["msg"] == msg {
			return true
		}
	}
	return false
}

func hasAll(r agentRun) bool {
	return len(r.dataset("fleutan.flows")) > 0 && len(r.dataset("fleutan.cpu")) > 0 && len(r.dataset("fleutan.qdisc")) > 0
}

// listenIn opens a TCP listener inside the network namespace at nsPath,
// from a thread that returns to the test's namespace afterwards.
func listenIn(t *testing.T, nsPath string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(self)
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	ln, lerr := net.Listen("tcp4", "127.0.0.1:0")
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with this goroutine's end.
		runtime.LockOSThread()
		t.Fatalf("back to the test's namespace: %v", err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	return ln
}

const (
	attributionEffect = "only sockets of the agent's own user get a process"
	cpuSelection      = "network processes of other users are not found and not reported"
	qdiscAttribution  = "flows of other users' sockets have no process"
)

// TestLeastPrivilege runs the agent as nobody with the documented
// capabilities, then with each one removed: the full set collects flows
// with their processes, cpu by eBPF and qdisc with flow attribution; a
// missing capability costs its feature, says so in one log line per
// input naming it, and the rest keeps shipping.
// flowsSnapshots is what the flows input does without eBPF.
const flowsSnapshots = "taking sock_diag snapshots each period instead (method: procfs); TCP connections that open and close within a period are not seen"

func TestLeastPrivilege(t *testing.T) {
	nstest.RequireRoot(t)
	// A socket of root (this test) that only a privileged agent attributes.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	documented := []string{"sys_ptrace", "dac_read_search", "bpf", "perfmon"}
	without := func(c string) []string {
		return slices.DeleteFunc(slices.Clone(documented), func(s string) bool { return s == c })
	}
	tests := []struct {
		name     string
		caps     []string
		lines    []string // log lines naming a capability, sorted
		attrib   bool     // root's listener has its process
		ebpf     bool
		noEffect bool
	}{
		{"documented set", documented, nil, true, true, false},
		{"without CAP_SYS_PTRACE", without("sys_ptrace"), []string{
			"cpu: process attribution needs CAP_SYS_PTRACE, which the agent lacks: " + cpuSelection,
			"flows: process attribution needs CAP_SYS_PTRACE, which the agent lacks: " + attributionEffect,
			"qdisc: process attribution needs CAP_SYS_PTRACE, which the agent lacks: " + qdiscAttribution,
		}, false, true, false},
		{"without CAP_DAC_READ_SEARCH", without("dac_read_search"), []string{
			"cpu: process attribution needs CAP_DAC_READ_SEARCH, which the agent lacks: " + cpuSelection,
			"flows: process attribution needs CAP_DAC_READ_SEARCH, which the agent lacks: " + attributionEffect,
			"qdisc: process attribution needs CAP_DAC_READ_SEARCH, which the agent lacks: " + qdiscAttribution,
		}, false, true, false},
		{"without CAP_BPF", without("bpf"), []string{
			"cpu: eBPF needs CAP_BPF, which the agent lacks: measuring processes by sampling /proc instead",
			"flows: eBPF needs CAP_BPF, which the agent lacks: " + flowsSnapshots,
			"qdisc: eBPF needs CAP_BPF, which the agent lacks: flow attribution disabled, qdisc and class statistics go on",
		}, true, false, false},
		{"without CAP_PERFMON", without("perfmon"), []string{
			"cpu: eBPF needs CAP_PERFMON, which the agent lacks: measuring processes by sampling /proc instead",
			"flows: eBPF needs CAP_PERFMON, which the agent lacks: " + flowsSnapshots,
			"qdisc: eBPF needs CAP_PERFMON, which the agent lacks: flow attribution disabled, qdisc and class statistics go on",
		}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runUnprivileged(t, tt.caps, "host", func(r agentRun) bool {
				return hasAll(r) && r.flowOn(port) != nil
			})
			if got := r.capLines(); !slices.Equal(got, tt.lines) {
				t.Errorf("log lines naming a capability:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.lines, "\n"))
			}
			proc, _ := r.flowOn(port)["process"].(map[string]any)
			if pid, _ := proc["pid"].(float64); tt.attrib != (int(pid) == os.Getpid()) {
				t.Errorf("root's listener: process %v, want attributed = %v (pid %d)", proc, tt.attrib, os.Getpid())
			}
			if got := r.logged("cpu: measuring processes exactly with eBPF on the sched_switch and sched_migrate_task raw tracepoints"); got != tt.ebpf {
				t.Errorf("cpu by eBPF = %v, want %v", got, tt.ebpf)
			}
			if got := r.logged("qdisc: flow attribution by eBPF on net:net_dev_start_xmit"); got != tt.ebpf {
				t.Errorf("qdisc flow attribution = %v, want %v", got, tt.ebpf)
			}
			if got := r.logged("flows: following every TCP connection from its first state change to its close with eBPF on the sock:inet_sock_set_state tracepoint (method: ebpf)"); got != tt.ebpf {
				t.Errorf("flows by eBPF = %v, want %v", got, tt.ebpf)
			}
			for _, m := range logLines(r.log) {
				if m["level"] == "ERROR" {
					t.Errorf("error logged: %v", m)
				}
			}
		})
	}
}

// TestLeastPrivilegeOtherNamespaces checks namespaces: all, which needs
// CAP_SYS_ADMIN to enter another network namespace: without it one line
// says so and the agent's own namespace is still collected.
func TestLeastPrivilegeOtherNamespaces(t *testing.T) {
	nstest.RequireRoot(t)
	ipTool := requireTool(t, "ip", false)
	name := fmt.Sprintf("fbt-caps-%d-%x", os.Getpid(), time.Now().UnixNano()&0xffff)
	if out, err := exec.Command(ipTool, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ipTool, "netns", "del", name).Run() })
	if out, err := exec.Command(ipTool, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	inner := listenIn(t, "/run/netns/"+name)
	defer inner.Close()
	innerPort := inner.Addr().(*net.TCPAddr).Port
	host, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostPort := host.Addr().(*net.TCPAddr).Port

	documented := []string{"sys_ptrace", "dac_read_search", "bpf", "perfmon"}
	t.Run("without CAP_SYS_ADMIN", func(t *testing.T) {
		r := runUnprivileged(t, documented, "all", func(r agentRun) bool {
			// Two collections, so that a namespace had its chance.
			return hasAll(r) && r.collections(hostPort) >= 2
		})
		want := []string{"flows: other network namespaces needs CAP_SYS_ADMIN, which the agent lacks: collecting the agent's own network namespace only"}
		if got := r.capLines(); !slices.Equal(got, want) {
			t.Errorf("log lines naming a capability:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if r.flowOn(innerPort) != nil {
			t.Error("a flow of another namespace was collected without CAP_SYS_ADMIN")
		}
	})
	t.Run("with CAP_SYS_ADMIN", func(t *testing.T) {
		r := runUnprivileged(t, append(slices.Clone(documented), "sys_admin"), "all", func(r agentRun) bool {
			return hasAll(r) && r.flowOn(hostPort) != nil && r.flowOn(innerPort) != nil
		})
		if got := r.capLines(); len(got) != 0 {
			t.Errorf("log lines naming a capability: %q", got)
		}
	})
}
