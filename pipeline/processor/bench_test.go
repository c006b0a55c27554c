package processor

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// flowEvent is shaped like a fleutan.flows event: 45 leaf fields.
func flowEvent() pipeline.M {
	return pipeline.M{
		"event":       pipeline.M{"dataset": "fleutan.flows", "module": "fleutan", "kind": "metric", "duration": int64(10e9)},
		"data_stream": pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": "default"},
		"network": pipeline.M{"transport": "tcp", "type": "ipv4", "iana_number": "6", "direction": "egress",
			"community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "bytes": uint64(184467), "packets": uint64(312)},
		"source":      pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": uint16(43512), "bytes": uint64(4467), "packets": uint64(150)},
		"destination": pipeline.M{"ip": netip.MustParseAddr("93.184.216.34"), "port": uint16(443), "bytes": uint64(180000), "packets": uint64(162)},
		"process":     pipeline.M{"pid": int32(812), "name": "curl", "executable": "/usr/bin/curl", "args": []string{"curl", "-s", "https://example.com"}},
		"user":        pipeline.M{"id": "1000", "name": "alice"},
		"fleutan": pipeline.M{"flow": pipeline.M{
			"state": "ESTABLISHED", "inode": uint64(123456), "netns": uint64(4026531840),
			"tcp": pipeline.M{
				"rtt_us": uint32(1500), "rttvar_us": uint32(300), "min_rtt_us": uint32(900), "cwnd": uint32(10),
				"ssthresh": uint32(2147483647), "mss": uint32(1448), "bytes_acked": uint64(4467), "bytes_received": uint64(180000),
				"bytes_sent": uint64(4467), "bytes_retrans": uint64(0), "segs_in": uint32(162), "segs_out": uint32(150),
				"total_retrans": uint32(0), "lost": uint32(0), "delivery_rate_bps": uint64(9123456),
				"pacing_rate_bps": uint64(18246912), "notsent_bytes": uint32(0), "congestion": "cubic", "bdp_bytes": uint64(1710),
			},
		}},
	}
}

// BenchmarkProcessors runs the agent's typical chain on flow events:
// add_host_metadata, a drop_event whose condition does not match, rename.
func BenchmarkProcessors(b *testing.B) {
	ps := mustNew(b, `
- add_host_metadata: ~
- drop_event:
    when:
      or:
        - equals: {process.name: sshd}
        - network: {destination.ip: [loopback, link_local_unicast]}
        - range: {fleutan.flow.tcp.rtt_us: {gt: 10000000}}
- rename:
    fields:
      - {from: fleutan.flow.state, to: fleutan.flow.tcp_state}
`)
	events := make([]pipeline.Event, 1024)
	for i := range events {
		events[i] = pipeline.Event{Timestamp: time.Unix(1700000000, 0), Fields: flowEvent()}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &events[i%len(events)]
		// The rename is undone so the same event can go through again.
		if i >= len(events) {
			e.Fields.Delete("fleutan.flow.tcp_state")
			e.Fields.Put("fleutan.flow.state", "ESTABLISHED")
		}
		var err error
		for _, p := range ps {
			if e, err = p.Run(e); err != nil || e == nil {
				b.Fatalf("event lost: %v", err)
			}
		}
	}
}
