package queryapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/rdma"
)

var (
	t0     = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	t1     = t0.Add(10 * time.Second)
	curl   = &process.Process{PID: 4242, Name: "curl", UID: 1000}
	nginx  = &process.Process{PID: 80, Name: "nginx"}
	ns     = flows.Namespace{Inode: 4026531840, Known: true}
	ap     = netip.MustParseAddrPort
	tcpOut = func(local, remote string, p *process.Process, acked uint64) flows.Flow {
		return flows.Flow{Netns: ns.Inode, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: 1,
			Local: ap(local), Remote: ap(remote), Direction: flows.Outbound, Process: p,
			HasTCP: true, TCP: flows.TCPInfo{BytesAcked: acked}, Inode: uint32(len(local))}
	}
)

// fixture is a store with two flows collections and two cpu collections:
// curl sent 1000 bytes on its IPv4 connection in the period and ran on
// core 1 for 2 s of the 10.
func fixture() *input.Latest {
	l := input.NewLatest()
	listen := flows.Flow{Netns: ns.Inode, Family: flows.FamilyIPv6, Protocol: flows.ProtocolTCP, State: 10,
		Local: ap("[::]:443"), Remote: ap("[::]:0"), Direction: flows.Listening, Process: nginx, Inode: 7}
	mapped := flows.Flow{Netns: ns.Inode, Family: flows.FamilyIPv6, Protocol: flows.ProtocolTCP, State: 1,
		Local: ap("[::ffff:10.0.0.1]:443"), Remote: ap("[::ffff:10.0.0.9]:5555"), Direction: flows.Inbound, Process: nginx, Inode: 8, HasTCP: true}
	v6 := tcpOut("[fd00::1]:40000", "[fd00::2]:443", curl, 1)
	v6.Family = flows.FamilyIPv6
	prev := flows.Snapshot{Time: t0, Namespaces: []flows.Namespace{ns},
		Flows: []flows.Flow{listen, mapped, tcpOut("10.0.0.1:50000", "10.0.0.2:443", curl, 101), v6}}
	cur := flows.Snapshot{Time: t1, Namespaces: []flows.Namespace{ns},
		Flows: []flows.Flow{listen, mapped, tcpOut("10.0.0.1:50000", "10.0.0.2:443", curl, 1101), v6}}
	l.Set("flows", input.Collection{Time: prev.Time, Snapshot: prev})
	l.Set("flows", input.Collection{Time: cur.Time, Snapshot: cur})
	cores := []cpu.CoreTimes{{CPU: 0, IdleTicks: 100}, {CPU: 1, IdleTicks: 100}}
	cprev := cpu.Snapshot{Time: t0, MonotonicNs: 1e9, Method: cpu.MethodEBPF, Cores: cores,
		Processes: []cpu.ProcessTimes{{Process: curl, Series: 1, CoreNs: []uint64{0, 1e9}}}}
	ccur := cpu.Snapshot{Time: t1, MonotonicNs: 11e9, Method: cpu.MethodEBPF,
		Cores:     []cpu.CoreTimes{{CPU: 0, IdleTicks: 1100}, {CPU: 1, UserTicks: 200, IdleTicks: 900}},
		Processes: []cpu.ProcessTimes{{Process: curl, Series: 1, CoreNs: []uint64{0, 3e9}}}}
	l.Set("cpu", input.Collection{Time: cprev.Time, Snapshot: cprev})
	l.Set("cpu", input.Collection{Time: ccur.Time, Snapshot: ccur})
	return l
}

func serve(t *testing.T, h http.Handler, target string) (int, http.Header, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

func TestFlowsFiltersOnBuiltSnapshots(t *testing.T) {
	h := New(Options{Latest: fixture(), Inputs: []string{"flows", "cpu"}})
	tests := []struct {
		query string
		want  []string // local addresses of the flows answered, in order
	}{
		{"", []string{"[::]:443", "[::ffff:10.0.0.1]:443", "10.0.0.1:50000", "[fd00::1]:40000"}},
		{"pid=4242", []string{"10.0.0.1:50000", "[fd00::1]:40000"}},
		{"process=nginx", []string{"[::]:443", "[::ffff:10.0.0.1]:443"}},
		{"port=443", []string{"[::]:443", "[::ffff:10.0.0.1]:443", "10.0.0.1:50000", "[fd00::1]:40000"}},
		{"port=5555", []string{"[::ffff:10.0.0.1]:443"}},
		{"port=0", nil}, // a listener's remote port 0 is no peer
		{"peer=10.0.0.0/8", []string{"[::ffff:10.0.0.1]:443", "10.0.0.1:50000"}}, // a mapped peer matches as IPv4
		{"peer=::/0", []string{"[fd00::1]:40000"}},                               // listeners have no peer
		{"peer=0.0.0.0/0", []string{"[::ffff:10.0.0.1]:443", "10.0.0.1:50000"}},
		{"peer=fd00::2", []string{"[fd00::1]:40000"}},
		{"pid=4242&peer=10.0.0.2&port=443", []string{"10.0.0.1:50000"}},
		{"pid=80&process=curl", nil},
	}
	for _, tt := range tests {
		code, _, body := serve(t, h, "/api/v1/flows?"+tt.query)
		var d struct {
			Time         time.Time  `json:"time"`
			PreviousTime *time.Time `json:"previous_time"`
			Flows        []struct {
				Flow struct {
					Local string `json:"local"`
				} `json:"flow"`
				Delta *struct {
					BytesOut uint64 `json:"bytes_out"`
				} `json:"delta"`
			} `json:"flows"`
		}
		if code != 200 || json.Unmarshal(body, &d) != nil {
			t.Fatalf("flows?%s: %d %s", tt.query, code, body)
		}
		var got []string
		for _, f := range d.Flows {
			got = append(got, f.Flow.Local)
			if f.Flow.Local == "10.0.0.1:50000" && (f.Delta == nil || f.Delta.BytesOut != 1000) {
				t.Errorf("flows?%s: curl's connection has delta %+v, want 1000 bytes out", tt.query, f.Delta)
			}
			if f.Flow.Local == "[::]:443" && f.Delta != nil {
				t.Errorf("flows?%s: a listener has a delta", tt.query)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("flows?%s: %v, want %v", tt.query, got, tt.want)
		}
		if !d.Time.Equal(t1) || d.PreviousTime == nil || !d.PreviousTime.Equal(t0) {
			t.Errorf("flows?%s: time %v, previous %v", tt.query, d.Time, d.PreviousTime)
		}
	}
}

func TestProcessAndCPUOnBuiltSnapshots(t *testing.T) {
	h := New(Options{Latest: fixture(), Inputs: []string{"flows", "cpu"}})
	code, _, body := serve(t, h, "/api/v1/processes/4242")
	var p struct {
		Process process.Process   `json:"process"`
		Flows   []json.RawMessage `json:"flows"`
		CPU     *cpu.ProcessUsage `json:"cpu"`
	}
	if code != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("processes/4242: %d %s", code, body)
	}
	if p.Process.Name != "curl" || len(p.Flows) != 2 || p.CPU == nil || p.CPU.TotalNs != 2e9 || p.CPU.Pct != 0.2 ||
		len(p.CPU.Cores) != 1 || p.CPU.Cores[0].CPU != 1 || p.CPU.Cores[0].Share != 1 {
		t.Errorf("processes/4242: %s", body)
	}
	// nginx has flows but used no CPU: cpu is null.
	code, _, body = serve(t, h, "/api/v1/processes/80")
	if code != 200 || !strings.Contains(string(body), `"cpu":null`) || !strings.Contains(string(body), `"name":"nginx"`) {
		t.Errorf("processes/80: %d %s", code, body)
	}
	code, _, body = serve(t, h, "/api/v1/cpu")
	var c struct {
		PeriodNs  int64             `json:"period_ns"`
		Cores     []cpu.CoreUsage   `json:"cores"`
		Processes []json.RawMessage `json:"processes"`
	}
	if code != 200 || json.Unmarshal(body, &c) != nil || c.PeriodNs != 10e9 || len(c.Cores) != 2 || c.Cores[1].User != 0.2 || c.Cores[1].Idle != 0.8 || len(c.Processes) != 1 {
		t.Errorf("cpu: %d %s", code, body)
	}
}

// TestAnswersWithoutCollections: 404 for an input the agent does not run,
// 503 with Retry-After before a running input's first collection, and
// empty lists (not null) after the first collection alone.
func TestAnswersWithoutCollections(t *testing.T) {
	first := input.NewLatest()
	first.Set("cpu", input.Collection{Time: t0, Snapshot: cpu.Snapshot{Time: t0, MonotonicNs: 1, Method: cpu.MethodSampling}})
	first.Set("flows", input.Collection{Time: t0, Snapshot: flows.Snapshot{Time: t0}})
	first.Set("rdma", input.Collection{Time: t0, Snapshot: rdma.Snapshot{Time: t0}})
	tests := []struct {
		name   string
		o      Options
		target string
		status int
		body   string
	}{
		{"no flows input", Options{Latest: input.NewLatest(), Inputs: []string{"cpu"}}, "/api/v1/flows", 404, "no flows input is running"},
		{"no cpu input", Options{Latest: input.NewLatest(), Inputs: []string{"flows"}}, "/api/v1/cpu", 404, "no cpu input is running"},
		{"no qdisc input", Options{Latest: input.NewLatest(), Inputs: []string{"flows"}}, "/api/v1/qdisc", 404, "no qdisc input is running"},
		{"qdisc not collected", Options{Latest: input.NewLatest(), Inputs: []string{"qdisc"}}, "/api/v1/qdisc", 503, "not completed its first collection"},
		{"no input for processes", Options{Latest: input.NewLatest(), Inputs: []string{"qdisc"}}, "/api/v1/processes/1", 404, "no flows or cpu input"},
		{"flows not collected", Options{Latest: input.NewLatest(), Inputs: []string{"flows"}}, "/api/v1/flows", 503, "not completed its first collection"},
		{"cpu not collected", Options{Latest: input.NewLatest(), Inputs: []string{"cpu"}}, "/api/v1/cpu", 503, "not completed its first collection"},
		{"process, nothing collected", Options{Latest: input.NewLatest(), Inputs: []string{"flows", "cpu"}}, "/api/v1/processes/1", 503, "neither the flows nor the cpu input"},
		{"process, flows off, cpu not collected", Options{Latest: input.NewLatest(), Inputs: []string{"cpu"}}, "/api/v1/processes/1", 503, "neither"},
		{"first flows collection", Options{Latest: first, Inputs: []string{"flows"}}, "/api/v1/flows", 200, `"previous_time":null,"namespaces":[],"unattributed":{"exited":0,"unreadable":0,"no_owner":0},"flows":[]}`},
		{"first cpu collection", Options{Latest: first, Inputs: []string{"cpu"}}, "/api/v1/cpu", 200, `"cores":[],"processes":[],"previous_time":null}`},
		{"unknown process", Options{Latest: first, Inputs: []string{"flows", "cpu"}}, "/api/v1/processes/77", 404, "process 77 is in no flow"},
		{"bad pid", Options{Latest: first, Inputs: []string{"flows", "cpu"}}, "/api/v1/processes/0x1", 400, `path parameter pid: \"0x1\" is not a decimal number`},
		{"pid zero", Options{Latest: first, Inputs: []string{"flows", "cpu"}}, "/api/v1/processes/0", 400, "0 is not a process id"},
		{"parameter on cpu", Options{Latest: first, Inputs: []string{"cpu"}}, "/api/v1/cpu?pid=1", 400, `unknown query parameter \"pid\": /api/v1/cpu takes none`},
		{"no rdma input", Options{Latest: input.NewLatest(), Inputs: []string{"cpu"}}, "/api/v1/rdma", 404, "no rdma input is running"},
		{"rdma not collected", Options{Latest: input.NewLatest(), Inputs: []string{"rdma"}}, "/api/v1/rdma", 503, "not completed its first collection"},
		// What the rdma input hands over on a host without RDMA (or
		// without devices): a collection with nothing in it.
		{"first rdma collection, no RDMA", Options{Latest: first, Inputs: []string{"rdma"}}, "/api/v1/rdma", 200, `"previous_time":null,"devices":[],"queue_pairs":[],"ports":[],"cm_ids":[]}`},
		{"parameter on rdma", Options{Latest: first, Inputs: []string{"rdma"}}, "/api/v1/rdma?pid=1", 400, `unknown query parameter \"pid\": /api/v1/rdma takes none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := serve(t, New(tt.o), tt.target)
			if code != tt.status || !strings.Contains(string(body), tt.body) {
				t.Errorf("%d %s, want %d with %s", code, body, tt.status, tt.body)
			}
			if retry := hdr.Get("Retry-After"); (code == 503) != (retry == "1") {
				t.Errorf("status %d with Retry-After %q", code, retry)
			}
		})
	}
}

// TestRequestsDuringCollections reads every endpoint while collections
// keep replacing each other (run with -race): the store hands out
// snapshots that nobody modifies, and Diff only reads them.
func TestRequestsDuringCollections(t *testing.T) {
	src := fixture()
	l := input.NewLatest()
	h := New(Options{Latest: l, Inputs: []string{"flows", "cpu"}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			for _, typ := range []string{"flows", "cpu"} {
				prev, cur, _ := src.Pair(typ)
				l.Set(typ, prev)
				l.Set(typ, cur)
			}
		}
	}()
	for {
		for _, p := range []string{"/api/v1/flows?port=443", "/api/v1/cpu", "/api/v1/processes/4242"} {
			if code, _, body := serve(t, h, p); code != 200 && code != 503 {
				t.Fatalf("%s: %d %s", p, code, body)
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
}

func TestQdiscOnBuiltSnapshots(t *testing.T) {
	dev := &qdisc.Device{Netns: 1, Index: 3, Name: "eth0", TxQueues: 2}
	mq := qdisc.Qdisc{Scope: qdisc.ScopeQdisc, Device: dev, Kind: "mq", Handle: 1 << 16, Parent: 0xffffffff, TxQueue: -1}
	q0 := qdisc.Qdisc{Scope: qdisc.ScopeQdisc, Device: dev, Kind: "fq_codel", Parent: 1<<16 | 1, TxQueue: 0}
	q1 := qdisc.Qdisc{Scope: qdisc.ScopeQdisc, Device: dev, Kind: "fq_codel", Parent: 1<<16 | 2, TxQueue: 1}
	at := func(ts time.Time, bytes uint64, qs ...qdisc.Qdisc) []qdisc.Qdisc {
		for i := range qs {
			qs[i].Time, qs[i].Bytes, qs[i].Packets = ts, bytes, bytes/1000
		}
		return qs
	}
	nsq := []qdisc.Namespace{{Inode: 1}}
	prev := qdisc.Snapshot{Time: t0, Namespaces: nsq, Qdiscs: at(t0, 1000, mq, q0, q1)}
	flow := qdisc.QueueFlow{Device: dev, TxQueue: 1, Protocol: 17, Local: ap("10.0.0.1:5000"), Remote: ap("10.0.0.2:53"), Bytes: 5000, Packets: 5}
	other := qdisc.QueueFlow{Device: dev, TxQueue: 1, Bytes: 100, Packets: 1, Other: true, OtherFlows: 2}
	lo := &qdisc.Device{Netns: 1, Index: 1, Name: "veth9", TxQueues: 1}
	single := qdisc.QueueFlow{Device: lo, TxQueue: 0, Protocol: 6, Bytes: 10, Packets: 1}
	nsq2 := []qdisc.Namespace{{Inode: 1, Previous: t0}}
	cur := qdisc.Snapshot{Time: t1, Namespaces: nsq2, Qdiscs: at(t1, 6000, mq, q0, q1), QueueFlows: []qdisc.QueueFlow{flow, other, single}}
	for _, tt := range []struct {
		name  string
		snaps []qdisc.Snapshot
		check func(t *testing.T, d qdiscDoc)
	}{
		{"first collection", []qdisc.Snapshot{prev}, func(t *testing.T, d qdiscDoc) {
			if d.PreviousTime != nil || len(d.Qdiscs) != 3 || d.Qdiscs[1].Delta != nil || len(d.Queues) != 2 || d.Queues[0].Delta != nil {
				t.Errorf("%+v", d)
			}
		}},
		{"second collection", []qdisc.Snapshot{prev, cur}, func(t *testing.T, d qdiscDoc) {
			if d.PreviousTime == nil || len(d.Qdiscs) != 3 || d.Qdiscs[2].Delta == nil || d.Qdiscs[2].Delta.Bytes != 5000 || d.Qdiscs[2].Delta.Elapsed != 10*time.Second {
				t.Fatalf("qdiscs %+v", d.Qdiscs)
			}
			// Queues 0 and 1 of eth0 (from its mq children), then veth9's
			// queue 0, seen only through a flow.
			if len(d.Queues) != 3 {
				t.Fatalf("%d queues, want 3: %+v", len(d.Queues), d.Queues)
			}
			q := d.Queues[1]
			if q.Device.Name != "eth0" || q.TxQueue != 1 || q.Qdisc == nil || q.Qdisc.Parent != 1<<16|2 || q.Delta == nil || q.Delta.Packets != 5 ||
				len(q.Flows) != 2 || q.Flows[0].Bytes != 5000 || !q.Flows[1].Other {
				t.Errorf("queue 1: %+v", q)
			}
			if len(d.Queues[0].Flows) != 0 || d.Queues[0].Flows == nil {
				t.Errorf("queue 0 flows %v, want an empty list", d.Queues[0].Flows)
			}
			if v := d.Queues[2]; v.Device.Name != "veth9" || v.Qdisc != nil || v.Delta != nil || len(v.Flows) != 1 {
				t.Errorf("veth9's queue: %+v", v)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := input.NewLatest()
			for _, s := range tt.snaps {
				l.Set("qdisc", input.Collection{Time: s.Time, Snapshot: s})
			}
			code, _, body := serve(t, New(Options{Latest: l, Inputs: []string{"qdisc"}}), "/api/v1/qdisc")
			var d qdiscDoc
			if code != 200 || json.Unmarshal(body, &d) != nil {
				t.Fatalf("%d %s", code, body)
			}
			tt.check(t, d)
		})
	}
}

// TestRDMAOnBuiltSnapshots: the queue pairs of rping's server (pid 157)
// and client (pid 159) as the kernel matrix recorded them on 6.1
// (input/rdma/testdata/bookworm-6.1.dump), five pings apart, a queue pair
// that went and one that came, and the port's counters.
func TestRDMAOnBuiltSnapshots(t *testing.T) {
	rping := func(pid int) *process.Process { return &process.Process{PID: pid, Name: "rping"} }
	port := func(sent, rcvd uint64) rdma.Port {
		return rdma.Port{Index: 1, State: "ACTIVE", PhysState: 5, Netdev: "va359d6a", NetdevIndex: 7,
			Counters: map[string]uint64{"sent_pkts": sent, "rcvd_pkts": rcvd, "out_of_seq_request": 0}}
	}
	dev := func(p rdma.Port) []rdma.Device {
		return []rdma.Device{{Index: 0, Name: "rxa359d6a", Protocol: "roce", NodeType: 1, Ports: []rdma.Port{p}}}
	}
	cli := rdma.CMID{DeviceIndex: 0, Device: "rxa359d6a", Port: 1, ID: 1, LQPN: 17, PortSpace: "tcp", State: "CONNECT",
		Src: ap("10.77.0.1:52456"), Dst: ap("10.77.0.1:7471"), PID: 159}
	srv := rdma.CMID{DeviceIndex: 0, Device: "rxa359d6a", Port: 1, ID: 2, LQPN: 18, PortSpace: "tcp", State: "CONNECT",
		Src: ap("10.77.0.1:7471"), Dst: ap("10.77.0.1:52456"), Inbound: true, PID: 157}
	qp := func(lqpn, rqpn, sq, rq uint32, pid int, cm *rdma.CMID) rdma.QP {
		return rdma.QP{DeviceIndex: 0, Device: "rxa359d6a", Port: 1, LQPN: lqpn, RQPN: rqpn, Type: "RC", State: "RTS",
			SQPSN: sq, RQPSN: rq, PID: pid, Process: rping(pid), CM: cm}
	}
	gone := rdma.QP{DeviceIndex: 0, Device: "rxa359d6a", Port: 1, LQPN: 19, Type: "UD", State: "RTS", SQPSN: 3, PID: 160, Process: rping(160)}
	prev := rdma.Snapshot{Time: t0, Devices: dev(port(1000, 990)),
		QPs: []rdma.QP{qp(17, 18, 0xfffffe, 100, 159, &cli), qp(18, 17, 100, 0xfffffe, 157, &srv), gone}, CMIDs: []rdma.CMID{cli, srv}}
	came := qp(20, 0, 7, 0, 161, nil)
	came.Type = "UD"
	cur := rdma.Snapshot{Time: t1, Devices: dev(port(1030, 1020)),
		QPs: []rdma.QP{qp(17, 18, 3, 105, 159, &cli), qp(18, 17, 105, 3, 157, &srv), came}, CMIDs: []rdma.CMID{cli, srv}}
	l := input.NewLatest()
	l.Set("rdma", input.Collection{Time: prev.Time, Snapshot: prev})
	l.Set("rdma", input.Collection{Time: cur.Time, Snapshot: cur})
	code, _, body := serve(t, New(Options{Latest: l, Inputs: []string{"rdma"}}), "/api/v1/rdma")
	var d rdmaDoc
	if code != 200 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if !d.Time.Equal(t1) || d.PreviousTime == nil || !d.PreviousTime.Equal(t0) || len(d.Devices) != 1 || len(d.CMIDs) != 2 {
		t.Errorf("time %v, previous %v, %d devices, %d CM ids", d.Time, d.PreviousTime, len(d.Devices), len(d.CMIDs))
	}
	if len(d.QueuePairs) != 4 {
		t.Fatalf("%d queue pairs, want 4 (17, 18, the new 20, the final 19): %s", len(d.QueuePairs), body)
	}
	// The client's send PSN wrapped at 2^24: 0xfffffe to 3 is 5 packets.
	for i, want := range []struct {
		lqpn     uint32
		pid      int
		final    bool
		sq, rq   uint32
		delta    bool
		src, dst string
	}{
		{17, 159, false, 5, 5, true, "10.77.0.1:52456", "10.77.0.1:7471"},
		{18, 157, false, 5, 5, true, "10.77.0.1:7471", "10.77.0.1:52456"},
		{20, 161, false, 0, 0, false, "", ""},
		{19, 160, true, 0, 0, false, "", ""},
	} {
		r := d.QueuePairs[i]
		if r.QP.LQPN != want.lqpn || r.QP.PID != want.pid || r.QP.Process == nil || r.QP.Process.Name != "rping" || r.Final != want.final {
			t.Errorf("queue pair %d: %+v, want QPN %d of rping %d, final %v", i, r, want.lqpn, want.pid, want.final)
		}
		if (r.Delta != nil) != want.delta || (r.Delta != nil && (r.Delta.SQPSN != want.sq || r.Delta.RQPSN != want.rq || r.Delta.Elapsed != 10*time.Second)) {
			t.Errorf("queue pair %d: delta %+v, want send %d receive %d over 10s (or null: %v)", want.lqpn, r.Delta, want.sq, want.rq, !want.delta)
		}
		var src, dst string
		if r.QP.CM != nil {
			src, dst = r.QP.CM.Src.String(), r.QP.CM.Dst.String()
		}
		if want.src != "" && (src != want.src || dst != want.dst) {
			t.Errorf("queue pair %d: CM %s -> %s, want %s -> %s", want.lqpn, src, dst, want.src, want.dst)
		}
	}
	if len(d.Ports) != 1 {
		t.Fatalf("ports %+v", d.Ports)
	}
	p := d.Ports[0]
	if p.Device != "rxa359d6a" || p.Port.Netdev != "va359d6a" || p.Counters["sent_pkts"] != 30 || p.Counters["rcvd_pkts"] != 30 ||
		p.Rates["sent_pkts"] != 3 || p.Counters["out_of_seq_request"] != 0 || len(p.Reset) != 0 || p.Elapsed != 10*time.Second {
		t.Errorf("port: %+v", p)
	}
	if !strings.Contains(string(body), `"reset":[]`) {
		t.Errorf("reset is not an empty list: %s", body)
	}

	// After the first collection alone: no deltas, no port changes.
	l = input.NewLatest()
	l.Set("rdma", input.Collection{Time: prev.Time, Snapshot: prev})
	_, _, body = serve(t, New(Options{Latest: l, Inputs: []string{"rdma"}}), "/api/v1/rdma")
	d = rdmaDoc{}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.PreviousTime != nil || len(d.QueuePairs) != 3 || len(d.Ports) != 0 || d.Ports == nil {
		t.Errorf("first collection: %s", body)
	}
	for _, r := range d.QueuePairs {
		if r.Delta != nil || r.Final {
			t.Errorf("first collection: queue pair %d has delta %+v, final %v", r.QP.LQPN, r.Delta, r.Final)
		}
	}
}
