package flowsinput

import (
	"context"
	"errors"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/internal/tcplife"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// attributionMethods are the ways the flows input finds the process of a
// socket; each attribution test runs once per method, with the method's
// YAML added to the input's configuration: the process index over /proc
// alone (input/internal/procindex), and the same index told by the eBPF
// connection tracker which processes opened connections (Hint).
var attributionMethods = []struct{ name, config string }{
	{MethodProcfs, "method: procfs\n"},
	{MethodEBPF, "method: ebpf\n"},
}

// tcplifeMissing tells whether this kernel predates the eBPF method:
// before Linux 5.12 tracing programs have no bpf_get_socket_cookie. There
// it asserts that the tracker refuses to load and names that helper (the
// reason in the input's fallback line, which TestMethodFallback checks);
// a test of the eBPF method ends there.
func tcplifeMissing(t *testing.T) bool {
	t.Helper()
	if nstest.KernelAtLeast(t, 5, 12) {
		return false
	}
	tr, err := tcplife.Open(tcplife.Options{})
	if err == nil {
		_ = tr.Close()
		t.Fatal("the eBPF connection tracker loaded on a kernel before 5.12, which has no bpf_get_socket_cookie for it")
	}
	if !errors.Is(err, tcplife.ErrNotSupported) || !strings.Contains(err.Error(), "bpf_get_socket_cookie") {
		t.Fatalf("before Linux 5.12 the tracker's error must name bpf_get_socket_cookie: %v", err)
	}
	t.Logf("no eBPF method before Linux 5.12, as expected: %v", err)
	return true
}

// startMethod chooses in's method as Run does, so that collect runs with
// the tracker when the method is ebpf; the test fails if that method
// cannot run here.
func startMethod(t *testing.T, in *flowsInput, want string) {
	t.Helper()
	if err := in.chooseMethod(nil); err != nil {
		t.Fatal(err)
	}
	if in.method != want {
		t.Fatalf("method %s, want %s", in.method, want)
	}
	if in.tracker != nil {
		t.Cleanup(func() { _ = in.tracker.Close() })
	}
}

// collectPeriod runs one period of in and returns its events.
func collectPeriod(t *testing.T, in *flowsInput) []pipeline.Event {
	t.Helper()
	rec := &recorder{publish: make(chan int, 1<<16)}
	if err := in.collect(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return rec.events
}

func field(e pipeline.Event, key string) string {
	v, ok := e.Fields.GetValue(key)
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// endpoints is "LOCAL REMOTE" of a flow event, as the helpers print them.
func endpoints(e pipeline.Event) string {
	ep := func(side string) string {
		ip := field(e, "fleutan.flow."+side+".ip")
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		return ip + ":" + field(e, "fleutan.flow."+side+".port")
	}
	return ep("local") + " " + ep("remote")
}

// TestAttributionReusedFD: a process holds a file while the input's first
// collections run, closes it and connects, so that the socket takes the
// file's fd number and the process's fd count does not change. Every event
// of that connection, from the first collection that sees it and for more
// than DefaultFullScanInterval collections, names the process.
func TestAttributionReusedFD(t *testing.T) {
	for _, m := range attributionMethods {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t)
			if m.name == MethodEBPF && tcplifeMissing(t) {
				return
			}
			server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
			addr := server.Do(t, "listen tcp 127.0.0.1:7701")
			client.Do(t, "openfile")
			in := newTestInput(t, "period: 1h\nreport: all\n"+m.config, ns, nil)
			startMethod(t, in, m.name)
			listener := map[string]int{addr + " :": server.PID()} // no remote
			for i := range 2 {
				got := map[string]int{}
				for _, e := range collectPeriod(t, in) {
					pid, _ := strconv.Atoi(field(e, "process.pid"))
					got[endpoints(e)] = pid
				}
				if !maps.Equal(got, listener) {
					t.Fatalf("collection %d before the connection: %v, want %v", i+1, got, listener)
				}
			}

			var fileFD, sockFD, before, after int
			var cLocal, cRemote string
			reply := client.Do(t, "dialonfile %s", addr)
			if _, err := fmt.Sscan(reply, &fileFD, &sockFD, &before, &after, &cLocal, &cRemote); err != nil {
				t.Fatalf("dialonfile: %q: %v", reply, err)
			}
			if fileFD != sockFD || before != after || before == 0 {
				t.Fatalf("the socket is on fd %d (the file was on %d), fd count %d then %d: not a reused fd at the same count", sockFD, fileFD, before, after)
			}
			sLocal, sRemote := splitPair(server.Do(t, "accept"))

			want := map[string]int{cLocal + " " + cRemote: client.PID(), sLocal + " " + sRemote: server.PID()}
			maps.Copy(want, listener)
			for period := 1; period <= procindex.DefaultFullScanInterval+1; period++ {
				got := map[string]int{}
				for _, e := range collectPeriod(t, in) {
					pid, _ := strconv.Atoi(field(e, "process.pid"))
					got[endpoints(e)] = pid
				}
				if !maps.Equal(got, want) {
					t.Errorf("collection %d after connect: pids by flow %v, want %v", period, got, want)
				}
			}
		})
	}
}

// ssUsers matches one holder in ss -p output: ("comm",pid=N,fd=M).
var ssUsers = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)`)

type owner struct {
	pid  int
	comm string
}

// ssOwners runs ss -tanp in ns and returns, per socket ("L LOCAL" for a
// listener, else "LOCAL PEER"), the lowest-pid holder it lists, and how
// many sockets have holders of two or more processes.
func ssOwners(t *testing.T, ns *nstest.Netns) (map[string]owner, int) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+ns.Path(), "ss", "-tanpH").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	owners, shared := map[string]owner{}, 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("ss line %q", line)
		}
		key := f[3] + " " + f[4]
		if f[0] == "LISTEN" {
			key = "L " + f[3]
		}
		var o owner
		pids := map[int]bool{}
		for _, m := range ssUsers.FindAllStringSubmatch(line, -1) {
			pid, _ := strconv.Atoi(m[2])
			pids[pid] = true
			if o.pid == 0 || pid < o.pid {
				o = owner{pid, m[1]}
			}
		}
		if len(pids) > 1 {
			shared++
		}
		if _, dup := owners[key]; dup {
			t.Fatalf("ss lists %s twice", key)
		}
		owners[key] = o
	}
	return owners, shared
}

// TestAttributionAgainstSS: 2,004 TCP sockets (listeners on IPv4 and IPv6,
// connections in both directions between four processes, a listener and
// connections shared with a child process, some of them closed in the
// parent since the previous collection so the child alone holds them) are
// left unchanged while one collection runs and ss -tanp lists them: every
// socket has the lowest-pid holder that ss lists, or no process when ss
// lists none.
func TestAttributionAgainstSS(t *testing.T) {
	for _, m := range attributionMethods {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t)
			if m.name == MethodEBPF && tcplifeMissing(t) {
				return
			}
			addrs := []string{"127.0.0.1:7601", "127.0.0.2:7602", "[::1]:7603", "127.0.0.1:7604"}
			var hs []*flowtest.Helper
			for _, a := range addrs {
				h := flowtest.Start(t, ns)
				h.Do(t, "listen tcp %s", a)
				hs = append(hs, h)
			}
			const perPair = 250
			for i, h := range hs {
				next := hs[(i+1)%len(hs)]
				h.Do(t, "dialmany %s %d", addrs[(i+1)%len(hs)], perPair)
				next.Do(t, "acceptmany %d", perPair)
			}
			// The first helper's first 20 connections and its listener
			// are shared with a child.
			child, err := strconv.Atoi(hs[0].Do(t, "share 20"))
			if err != nil {
				t.Fatal(err)
			}
			in := newTestInput(t, "period: 1h\nprotocols: [tcp]\nstates: [all]\nreport: all\n"+m.config, ns, nil)
			startMethod(t, in, m.name)
			if n := len(collectPeriod(t, in)); n != len(addrs)+2*len(addrs)*perPair {
				t.Fatalf("first collection: %d events", n)
			}
			// Between two collections the parent closes 10 of the shared
			// connections: they stay live, held by the child alone, and no
			// socket is new.
			hs[0].Do(t, "unshare 10")

			// Nothing changes from here until ss has listed the sockets.
			events := collectPeriod(t, in)
			want, shared := ssOwners(t, ns)

			sockets := len(addrs) + 2*len(addrs)*perPair
			if len(want) != sockets || len(events) != sockets {
				t.Fatalf("ss lists %d sockets, the input %d; want %d", len(want), len(events), sockets)
			}
			if shared != 11 {
				t.Errorf("ss shows %d sockets held by two processes, want the listener and 10 connections", shared)
			}
			childOnly := 0
			for _, o := range want {
				if o.pid == child {
					childOnly++
				}
			}
			if childOnly != 10 {
				t.Errorf("ss shows %d sockets whose lowest-pid holder is the child %d, want 10", childOnly, child)
			}
			var bad []string
			for _, e := range events {
				key := endpoints(e)
				if field(e, "fleutan.flow.direction") == "listening" {
					key = "L " + strings.Fields(key)[0]
				}
				o, ok := want[key]
				pid, _ := strconv.Atoi(field(e, "process.pid"))
				if got := (owner{pid, field(e, "process.name")}); !ok || got != o {
					bad = append(bad, fmt.Sprintf("%s: %+v, ss %+v", key, got, o))
				}
			}
			slices.Sort(bad)
			if len(bad) > 0 {
				t.Errorf("%d of %d sockets differ from ss, e.g.:\n%s", len(bad), sockets, strings.Join(bad[:min(len(bad), 10)], "\n"))
			}
		})
	}
}

// TestAttributionCountsUnattributedSockets: a socket whose known owner
// exits between the dump and the /proc walk counts as exited; one whose
// owner was never seen and exits likewise counts as no_owner.
func TestAttributionCountsUnattributedSockets(t *testing.T) {
	ns := nstest.New(t)
	m := pipeline.NewMetrics()
	in := newTestInputMetrics(t, "period: 1h\n", ns, nil, m)
	counts := func() [3]int64 {
		c := func(reason string) int64 {
			return m.LabeledCounter("input.flows.unattributed", "reason", reason).Load()
		}
		return [3]int64{c("exited"), c("unreadable"), c("no_owner")}
	}
	known := flowtest.Start(t, ns)
	known.Do(t, "listen tcp 127.0.0.1:7801")
	if evs := collectPeriod(t, in); len(evs) != 1 || field(evs[0], "process.pid") != strconv.Itoa(known.PID()) {
		t.Fatalf("first collection: %d events", len(evs))
	}
	if got := counts(); got != [3]int64{} {
		t.Errorf("after an attributed collection: exited, unreadable, no_owner = %v, want zeros", got)
	}

	in.afterDump = known.Stop
	if evs := collectPeriod(t, in); len(evs) != 1 || field(evs[0], "process.pid") != "" {
		t.Fatalf("owner gone: want one event without a process, got %d", len(evs))
	}
	if got := counts(); got != [3]int64{1, 0, 0} {
		t.Errorf("known owner exited: exited, unreadable, no_owner = %v, want [1 0 0]", got)
	}

	unseen := flowtest.Start(t, ns)
	unseen.Do(t, "listen tcp 127.0.0.1:7802")
	in.afterDump = unseen.Stop
	evs := collectPeriod(t, in)
	if got := counts(); got != [3]int64{1, 0, 1} {
		t.Errorf("unseen owner exited: exited, unreadable, no_owner = %v, want [1 0 1]; %d events", got, len(evs))
	}
}
