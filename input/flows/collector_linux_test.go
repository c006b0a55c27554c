package flows

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

func collect(t *testing.T, c *Collector) []Flow {
	t.Helper()
	snap, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return snap.Flows
}

// differ collects as the adapter does: each collection with its deltas
// against the previous one.
type differ struct {
	c    *Collector
	prev Snapshot
	d    map[*Flow]FlowDelta
}

func (x *differ) collect(t *testing.T) []Flow {
	t.Helper()
	snap, err := x.c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	ds := Diff(x.prev, snap)
	// The collector's refs and Diff's own lookup by key agree.
	plain := func(s Snapshot) Snapshot {
		return Snapshot{Time: s.Time, Flows: s.Flows, Namespaces: s.Namespaces, Held: s.Held, Lingering: s.Lingering}
	}
	if byKey := Diff(plain(x.prev), plain(snap)); !slices.Equal(ds, byKey) {
		t.Errorf("Diff with the collector's refs %+v, by key %+v", ds, byKey)
	}
	x.prev = snap
	x.d = make(map[*Flow]FlowDelta, len(ds))
	for i := range ds {
		x.d[&snap.Flows[i]] = ds[i]
	}
	return snap.Flows
}

// delta is Diff's result for f, a flow of the last collect.
func (x *differ) delta(f *Flow) FlowDelta { return x.d[f] }

// only returns the single flow with the given local and remote endpoints.
func only(t *testing.T, flows []Flow, proto uint8, local, remote string) *Flow {
	t.Helper()
	var got []*Flow
	for i := range flows {
		f := &flows[i]
		if f.Protocol == proto && f.Local.String() == local && f.Remote.String() == remote {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s flow %s -> %s, got %d in %s", TransportName(proto), local, remote, len(got), dumpFlows(flows))
	}
	return got[0]
}

func dumpFlows(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString("\n  " + f.Key().String() + " " + string(f.Direction))
		if f.Final {
			b.WriteString(" final")
		}
	}
	return b.String()
}

func splitPair(s string) (string, string) {
	a, b, _ := strings.Cut(s, " ")
	return a, b
}

func TestCollectorDeltasAcrossPeriodsAndFinal(t *testing.T) {
	ns := nstest.New(t)
	server, client, late := flowtest.Start(t, ns), flowtest.Start(t, ns), flowtest.Start(t, ns)
	server.Do(t, "listen tcp 127.0.0.1:5002")
	cLocal, cRemote := splitPair(client.Do(t, "dial tcp 127.0.0.1:5002"))
	sLocal, sRemote := splitPair(server.Do(t, "accept"))
	client.Do(t, "send 5000")
	server.Do(t, "recv 5000")
	client.Do(t, "sync")

	c := collectorIn(t, Options{States: 1 << stateEstablished}, namespaceOf(t, ns))
	x := &differ{c: c}
	// 1: present from the start, so no delta.
	flows := x.collect(t)
	for i := range flows {
		f := &flows[i]
		if x.delta(f).OK {
			t.Errorf("first collection: %s has a delta", f.Key())
		}
	}
	first := only(t, flows, protoTCP, cLocal, cRemote).FirstSeen

	// 2: known extra bytes both ways, and a flow born in between.
	client.Do(t, "send 1000")
	server.Do(t, "recv 1000")
	client.Do(t, "sync")
	server.Do(t, "send 300")
	client.Do(t, "recv 300")
	server.Do(t, "sync")
	lLocal, lRemote := splitPair(late.Do(t, "dial tcp 127.0.0.1:5002"))
	late.Do(t, "send 777")
	// The listener's process accepts the late one as its connection 1.
	lsLocal, lsRemote := splitPair(server.Do(t, "accept"))
	server.Do(t, "recv 777")
	late.Do(t, "sync")
	server.Do(t, "use 0")
	flows = x.collect(t)
	type want struct{ in, out uint64 }
	check := func(step string, flows []Flow, cases map[[2]string]want) {
		t.Helper()
		for ep, w := range cases {
			d := x.delta(only(t, flows, protoTCP, ep[0], ep[1]))
			if !d.OK || d.BytesIn != w.in || d.BytesOut != w.out {
				t.Errorf("%s: %s -> %s delta %v %+v, want in %d out %d", step, ep[0], ep[1], d.OK, d.Delta, w.in, w.out)
			}
		}
	}
	check("second", flows, map[[2]string]want{
		{cLocal, cRemote}: {in: 300, out: 1000},
		{sLocal, sRemote}: {in: 1000, out: 300},
		// born after the first collection: delta is everything so far
		{lLocal, lRemote}:   {in: 0, out: 777},
		{lsLocal, lsRemote}: {in: 777, out: 0},
	})
	if f := only(t, flows, protoTCP, cLocal, cRemote); !f.FirstSeen.Equal(first) {
		t.Errorf("FirstSeen moved from %v to %v", first, f.FirstSeen)
	}
	if d := x.delta(only(t, flows, protoTCP, cLocal, cRemote)); d.SegsOut == 0 || d.SegsIn == 0 {
		t.Errorf("segment deltas are zero: %+v", d.Delta)
	}

	// 3
	client.Do(t, "send 20000")
	server.Do(t, "recv 20000")
	client.Do(t, "sync")
	flows = x.collect(t)
	check("third", flows, map[[2]string]want{
		{cLocal, cRemote}:   {in: 0, out: 20000},
		{sLocal, sRemote}:   {in: 20000, out: 0},
		{lLocal, lRemote}:   {in: 0, out: 0},
		{lsLocal, lsRemote}: {in: 0, out: 0},
	})

	// The late connection goes away: one final report for each end, then
	// none.
	late.Stop()
	for _, step := range []string{"after close", "once more"} {
		flows = x.collect(t)
		finals := 0
		for i := range flows {
			f := &flows[i]
			if f.Final {
				finals++
				if x.delta(f).OK {
					t.Errorf("%s: final flow with a delta", step)
				}
				if (f.Local.String() != lLocal || f.Remote.String() != lRemote) && (f.Local.String() != lsLocal || f.Remote.String() != lsRemote) {
					t.Errorf("%s: unexpected final %s", step, f.Key())
				}
			}
		}
		want := 2
		if step == "once more" {
			want = 0
		}
		if finals != want {
			t.Errorf("%s: %d final flows, want %d: %s", step, finals, want, dumpFlows(flows))
		}
	}
}

func TestCollectorAllNamespacesTagsEach(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	ha, hb := flowtest.Start(t, a), flowtest.Start(t, b)
	ha.Do(t, "listen tcp 127.0.0.1:5003")
	hb.Do(t, "listen tcp 127.0.0.1:5003")

	c := mustNew(t, Options{AllNamespaces: true, Protocols: []uint8{protoTCP}, States: 1 << stateListen, NoProcesses: true})
	t.Cleanup(func() { _ = c.Close() })
	flows := collect(t, c)
	for _, ns := range []struct {
		ns  *nstest.Netns
		pid int
	}{{a, ha.PID()}, {b, hb.PID()}} {
		want := namespaceOf(t, ns.ns)
		n := 0
		for _, f := range flows {
			if f.Netns == want.Inode {
				n++
				if f.NetnsName != want.Name || f.Local.String() != "127.0.0.1:5003" {
					t.Errorf("netns %d: flow %s named %q, want %q", want.Inode, f.Key(), f.NetnsName, want.Name)
				}
			}
		}
		if n != 1 {
			t.Errorf("netns %s (%d): %d flows, want 1: %s", want.Name, want.Inode, n, dumpFlows(flows))
		}
	}
}

func TestCollectorNamespaceGoneClosesDumperAndFinalsFlows(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	ha, hb := flowtest.Start(t, a), flowtest.Start(t, b)
	ha.Do(t, "listen tcp 127.0.0.1:5005")
	hb.Do(t, "listen tcp 127.0.0.1:5006")
	nsA, nsB := namespaceOf(t, a), namespaceOf(t, b)
	list := []Namespace{nsA, nsB}
	c := mustNew(t, Options{Protocols: []uint8{protoTCP}, NoProcesses: true,
		Namespaces: func() ([]Namespace, error) { return list, nil }})
	t.Cleanup(func() { _ = c.Close() })
	if flows := collect(t, c); len(flows) != 2 || c.dumpers.Len() != 2 {
		t.Fatalf("%d flows, %d dumpers, want 2 and 2: %s", len(flows), c.dumpers.Len(), dumpFlows(flows))
	}
	list = list[:1]
	flows := collect(t, c)
	if c.dumpers.Len() != 1 {
		t.Errorf("%d dumpers after netns %d went away, want 1", c.dumpers.Len(), nsB.Inode)
	}
	if len(flows) != 2 || flows[1].Netns != nsB.Inode || !flows[1].Final || flows[0].Final {
		t.Errorf("want the live flow of A and one final of B: %s", dumpFlows(flows))
	}
}

func TestCollectorSkipsUnopenableNamespaceLoggingOnce(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5007")
	var logs bytes.Buffer
	bogus := Namespace{Inode: 1, Path: t.TempDir() + "/missing"}
	c := mustNew(t, Options{Protocols: []uint8{protoTCP}, NoProcesses: true,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Namespaces: func() ([]Namespace, error) { return []Namespace{bogus, namespaceOf(t, ns)}, nil }})
	t.Cleanup(func() { _ = c.Close() })
	for range 3 {
		if flows := collect(t, c); len(flows) != 1 {
			t.Fatalf("%d flows, want the one of the good namespace: %s", len(flows), dumpFlows(flows))
		}
	}
	if n := strings.Count(logs.String(), "cannot be opened"); n != 1 {
		t.Errorf("%d log lines about the namespace, want 1:\n%s", n, logs.String())
	}
}

func mustNew(t testing.TB, o Options) *Collector {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collectorIn points a collector at the given namespaces only.
func collectorIn(t testing.TB, o Options, nss ...Namespace) *Collector {
	t.Helper()
	o.Namespaces = func() ([]Namespace, error) { return nss, nil }
	c := mustNew(t, o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func namespaceOf(t testing.TB, ns *nstest.Netns) Namespace {
	return Namespace{Inode: flowtest.Inode(t, ns), Path: ns.Path(), Name: ns.Name}
}

// TestCollectorNoHistoryKeep: with NoHistory and Keep the collection holds
// only the kept sockets, with their direction (from a listener Keep
// refused) and process; every flow is new and none is reported final, and
// the collector keeps no flows between collections.
func TestCollectorNoHistoryKeep(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5003")
	h.Do(t, "dialmany 127.0.0.1:5003 3")
	h.Do(t, "acceptmany 3")
	keep := func(f *Flow) bool { return f.Local.Port() == 5003 && f.State == stateEstablished }
	c := collectorIn(t, Options{Protocols: []uint8{protoTCP}, NoHistory: true, Keep: keep}, namespaceOf(t, ns))
	check := func(what string, want int) Snapshot {
		t.Helper()
		snap, err := c.Collect(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(snap.Flows) != want {
			t.Fatalf("%s: %d flows, want the %d accepted ends: %s", what, len(snap.Flows), want, dumpFlows(snap.Flows))
		}
		for _, f := range snap.Flows {
			if f.Local.Port() != 5003 || f.Direction != Inbound || f.Final || !f.FirstSeen.Equal(snap.Time) ||
				f.Process == nil || f.Process.PID != h.PID() {
				t.Errorf("%s: %s direction %s final %v first seen %v (collection %v) process %+v, want an inbound new flow of pid %d",
					what, f.Key(), f.Direction, f.Final, f.FirstSeen, snap.Time, f.Process, h.PID())
			}
		}
		if c.prev != nil || c.prevIdx != nil || c.bufs[0] != nil || c.bufs[1] != nil {
			t.Errorf("%s: the collector holds %d previous flows and buffers of %d and %d", what, len(c.prev), cap(c.bufs[0]), cap(c.bufs[1]))
		}
		return snap
	}
	first := check("first collection", 3)
	h.Do(t, "close") // the current connection: the last one accepted
	check("after a close", 2)
	if len(first.Flows) != 3 {
		t.Errorf("the first snapshot changed under a later collection: %d flows", len(first.Flows))
	}
}
