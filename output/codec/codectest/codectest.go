// Package codectest builds realistic events for output tests and
// benchmarks, so every output measures the same document shape.
package codectest

import (
	"maps"
	"net/netip"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// FlowEvent returns a fleutan.flows event of about 45 leaf fields shaped as
// the flows input emits them; i varies the ports, counters and timestamp so
// that consecutive events differ.
func FlowEvent(i int) pipeline.Event {
	n := uint64(i)
	e := pipeline.Event{
		Timestamp: time.Date(2026, 11, 27, 4, 5, 34, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Meta:      pipeline.M{"_id": "fl-" + strconv.Itoa(i)},
		Series:    "tcp 10.0.0.1:443 10.0.0.2:51234",
		Fields: pipeline.M{
			"event": pipeline.M{
				"dataset":  "fleutan.flows",
				"module":   "fleutan",
				"kind":     "metric",
				"duration": 10 * time.Second,
			},
			"network": pipeline.M{
				"transport":    "tcp",
				"type":         "ipv4",
				"iana_number":  "6",
				"direction":    "ingress",
				"community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
				"bytes":        1_234_567 + n,
				"packets":      int64(4321 + i),
			},
			"source": pipeline.M{
				"ip":      netip.MustParseAddr("10.0.0.2"),
				"port":    51234 + i%1000,
				"bytes":   uint64(4567),
				"packets": uint64(89),
			},
			"destination": pipeline.M{
				"ip":      netip.MustParseAddr("10.0.0.1"),
				"port":    443,
				"bytes":   uint64(1_230_000) + n,
				"packets": uint64(4232),
			},
			"process": pipeline.M{
				"pid":        int64(4242),
				"name":       "nginx",
				"executable": "/usr/sbin/nginx",
				"args":       []string{"nginx", "-g", "daemon off;"},
			},
			"fleutan": pipeline.M{
				"flow": pipeline.M{
					"state": "ESTABLISHED",
					"inode": uint64(987654),
					"netns": uint64(4026531840),
					"tcp": pipeline.M{
						"rtt_us":            uint32(1234),
						"rttvar_us":         uint32(321),
						"min_rtt_us":        uint32(800),
						"cwnd":              uint32(10),
						"ssthresh":          uint32(2147483647),
						"mss":               uint32(1448),
						"bytes_acked":       uint64(1_230_000) + n,
						"bytes_received":    uint64(4567),
						"bytes_sent":        uint64(1_230_100) + n,
						"bytes_retrans":     uint64(2896),
						"segs_in":           uint32(90),
						"segs_out":          uint32(4233),
						"total_retrans":     uint32(2),
						"lost":              uint32(0),
						"delivery_rate_bps": uint64(95_000_000),
						"pacing_rate_bps":   uint64(190_000_000),
						"notsent_bytes":     uint32(0),
						"congestion":        "cubic",
						"bdp_bytes":         float64(14_662.5),
					},
					"delta": pipeline.M{
						"bytes_in":  uint64(120),
						"bytes_out": uint64(48_000),
						"segs_in":   uint64(3),
						"segs_out":  uint64(34),
						"retrans":   uint64(0),
					},
				},
			},
		},
	}
	// Sized like the flows input's root map: room for what the pipeline
	// adds (pipeline.ReservedKeys).
	fields := make(pipeline.M, len(e.Fields)+pipeline.ReservedKeys)
	maps.Copy(fields, e.Fields)
	e.Fields = fields
	return e
}
