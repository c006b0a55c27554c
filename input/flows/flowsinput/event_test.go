package flowsinput

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/fleutan/fleutanbeat/input/flows"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/pipeline"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func mustM(m pipeline.M) pipeline.M { return m }

func checkField(t *testing.T, name string, m pipeline.M, key string, want any) {
	t.Helper()
	got, ok := m.GetValue(key)
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %s = %#v (present %v), want %#v", name, key, got, ok, want)
	}
}

func goldenTCPInfo() flows.TCPInfo {
	return flows.TCPInfo{
		RTTMicros: 31, RTTVarMicros: 42, MinRTTMicros: 20, Cwnd: 14, Ssthresh: 8, MSS: 65483,
		SegsIn: 23, SegsOut: 28, TotalRetrans: 1, Lost: 0, NotsentBytes: 7,
		BytesAcked: 1048577, BytesReceived: 65536, BytesSent: 1048576, BytesRetrans: 0,
		DeliveryRate: 5_000_000_000, PacingRate: 6_000_000_000,
	}
}

func TestEventGolden(t *testing.T) {
	proc := &procindex.Process{PID: 4242, PPID: 1, Name: "curl", Executable: "/usr/bin/curl",
		Args: []string{"curl", "http://127.0.0.1:8080/"}, UID: 1000, User: "alice", StartTime: 123456}
	first := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	ts := time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
	tests := []struct {
		name  string
		flow  flows.Flow
		delta flows.FlowDelta
	}{
		{"tcp_outbound_delta", flows.Flow{
			Netns: 4026531840, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: stateEstablished,
			Local: netip.MustParseAddrPort("10.0.0.2:50492"), Remote: netip.MustParseAddrPort("10.0.0.1:8080"),
			Inode: 98765, UID: 1000, Direction: flows.Outbound, Process: proc,
			HasTCP: true, TCP: goldenTCPInfo(), Congestion: "cubic",
			FirstSeen: first,
			Route:     &flows.Route{Device: "eth0", Gateway: netip.MustParseAddr("10.0.0.254"), Src: netip.MustParseAddr("10.0.0.2")},
		}, flows.FlowDelta{OK: true, Delta: flows.Delta{BytesIn: 100, BytesOut: 2000, SegsIn: 3, SegsOut: 4, Retrans: 1}}},
		{"tcp6_inbound_named_netns", flows.Flow{
			Netns: 4026532999, NetnsName: "blue", Family: flows.FamilyIPv6, Protocol: flows.ProtocolTCP, State: stateEstablished,
			Local: netip.MustParseAddrPort("[fd00::1]:443"), Remote: netip.MustParseAddrPort("[fd00::2]:40000"),
			Inode: 1234, Direction: flows.Inbound, Process: proc, HasTCP: true, TCP: goldenTCPInfo(), Congestion: "bbr",
			FirstSeen: first,
			// A peer on the connected network: no gateway.
			Route: &flows.Route{Device: "veth1", Src: netip.MustParseAddr("fd00::1")},
		}, flows.FlowDelta{}},
		{"udp_listening", flows.Flow{
			Netns: 4026531840, Family: flows.FamilyIPv4, Protocol: flows.ProtocolUDP, State: stateClose,
			Local: netip.MustParseAddrPort("0.0.0.0:53"), Remote: netip.MustParseAddrPort("0.0.0.0:0"),
			Inode: 55, UID: 0, Direction: flows.Listening, FirstSeen: first,
		}, flows.FlowDelta{}},
		{"tcp_final_mapped_no_process", flows.Flow{
			Netns: 4026531840, Family: flows.FamilyIPv6, Protocol: flows.ProtocolTCP, State: stateFinWait2,
			Local: netip.MustParseAddrPort("[::ffff:192.0.2.1]:22"), Remote: netip.MustParseAddrPort("[::ffff:192.0.2.9]:61000"),
			Inode: 77, UID: 0, Direction: flows.Inbound, HasTCP: true, TCP: goldenTCPInfo(), Congestion: "cubic",
			Final: true, FirstSeen: first,
		}, flows.FlowDelta{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Event(&tt.flow, tt.delta, ts, input.Times{Window: 10 * time.Second, Collection: 1500 * time.Microsecond})
			doc := map[string]any{"@timestamp": e.Timestamp.Format(time.RFC3339Nano), "series": e.Series, "fields": e.Fields}
			got, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("event differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

// TestEventDurationIsTheTimeCovered: ECS event.duration is the time the
// event covers, in ns: the period window for a live flow, the flow's
// lifetime (first seen to the collection that found it gone) for a final
// one. The collection's own time is fleutan.collection.duration_us.
func TestEventDurationIsTheTimeCovered(t *testing.T) {
	first := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	ts := first.Add(95*time.Second + 250*time.Millisecond)
	times := input.Times{Window: 10*time.Second + 2*time.Millisecond, Collection: 1500 * time.Microsecond}
	for _, tc := range []struct {
		name string
		flow flows.Flow
		want int64
	}{
		{"live", flows.Flow{Protocol: flows.ProtocolTCP, Direction: flows.Outbound, FirstSeen: first}, 10_002_000_000},
		{"final", flows.Flow{Protocol: flows.ProtocolTCP, Direction: flows.Outbound, FirstSeen: first, Final: true}, 95_250_000_000},
		{"final without first sight", flows.Flow{Protocol: flows.ProtocolTCP, Direction: flows.Outbound, Final: true}, 0},
	} {
		e := Event(&tc.flow, flows.FlowDelta{}, ts, times)
		checkField(t, tc.name, e.Fields, "event.duration", tc.want)
		checkField(t, tc.name, e.Fields, "fleutan.collection.duration_us", int64(1500))
	}
}

// BenchmarkFlowEvent is the input's per-flow share of the agent's hot
// path: one established TCP flow with a process and deltas to its event,
// with a Builder of its own (Event) and as the input builds, from one
// Builder reset every publishChunk events (BuildEvent).
func BenchmarkFlowEvent(b *testing.B) {
	proc := &procindex.Process{PID: 4242, PPID: 1, Name: "curl", Executable: "/usr/bin/curl",
		Args: []string{"curl", "http://127.0.0.1:8080/"}, UID: 1000, User: "alice"}
	f := flows.Flow{
		Netns: 4026531840, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: stateEstablished,
		Local: netip.MustParseAddrPort("10.0.0.2:50492"), Remote: netip.MustParseAddrPort("10.0.0.1:8080"),
		Inode: 98765, UID: 1000, Direction: flows.Outbound, Process: proc,
		HasTCP: true, TCP: goldenTCPInfo(), Congestion: "cubic",
	}
	d := flows.FlowDelta{OK: true, Delta: flows.Delta{BytesIn: 100, BytesOut: 2000, SegsIn: 3, SegsOut: 4, Retrans: 1}}
	ts := time.Now()
	b.Run("own builder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = Event(&f, d, ts, input.Times{Window: 10 * time.Second, Collection: time.Millisecond})
		}
	})
	b.Run("chunk builder", func(b *testing.B) {
		bld := pipeline.NewBuilder(publishChunk*eventObjects, publishChunk*eventMembers)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i++; i%publishChunk == 0 {
				bld.Reset()
			}
			benchSink = BuildEvent(bld, &f, d, ts, input.Times{Window: 10 * time.Second, Collection: time.Millisecond})
		}
	})
}

var benchSink pipeline.Event

// TestNetworkDirectionIsHostBased: ECS asks host-based agents for
// ingress/egress from the host's point of view; a flow the peer initiated
// is ingress, one this host initiated egress.
func TestNetworkDirectionIsHostBased(t *testing.T) {
	for _, tc := range []struct {
		dir  flows.Direction
		want string
	}{{flows.Inbound, "ingress"}, {flows.Outbound, "egress"}, {flows.Listening, "unknown"}} {
		f := flows.Flow{Protocol: flows.ProtocolTCP, Direction: tc.dir,
			Local: netip.MustParseAddrPort("10.0.0.1:80"), Remote: netip.MustParseAddrPort("10.0.0.2:4000")}
		checkField(t, string(tc.dir), Event(&f, flows.FlowDelta{}, time.Unix(1, 0), input.Times{}).Fields, "network.direction", tc.want)
	}
}

// TestShortTCPInfoFieldsAreAbsent: an older kernel's shorter struct
// tcp_info leaves the newer fields out of fleutan.flow.tcp; they are
// absent, not 0.
func TestShortTCPInfoFieldsAreAbsent(t *testing.T) {
	base := []string{"congestion", "cwnd", "lost", "mss", "rtt_us", "rttvar_us", "ssthresh", "total_retrans"}
	v46 := append(append([]string{}, base...), "bytes_acked", "bytes_received", "min_rtt_us", "notsent_bytes", "pacing_rate_bps", "segs_in", "segs_out")
	v419 := append(append([]string{}, v46...), "bdp_bytes", "bytes_retrans", "bytes_sent", "delivery_rate_bps")
	for _, tt := range []struct {
		name string
		len  int
		want []string
	}{
		{"original 104 bytes", 104, base},
		{"4.6: up to min_rtt", 152, v46},
		{"4.19: up to bytes_retrans", 216, v419},
		{"longer than known", 280, v419},
		{"unknown length", 0, v419},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := goldenTCPInfo()
			ti.Len = tt.len
			var b pipeline.Builder
			o := tcpObject(&b, &ti, "cubic")
			var got []string
			for i := range o.Len() {
				got = append(got, o.At(i).Key)
			}
			want := append([]string{}, tt.want...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fields %v, want %v", got, want)
			}
		})
	}
}
