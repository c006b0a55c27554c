// Package codectest builds realistic events for output tests and
// benchmarks, so every output measures the same document shape.
package codectest

import (
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// FlowEvent returns a fleutan.flows event of about 45 leaf fields shaped as
// the flows input emits them; i varies the ports, counters and timestamp so
// that consecutive events differ.
func FlowEvent(i int) pipeline.Event {
	return BuildFlowEvent(pipeline.NewBuilder(14, 72), i)
}

// BuildFlowEvent is FlowEvent with the objects taken from b, as the flows
// input builds a chunk of events with one Builder.
func BuildFlowEvent(b *pipeline.Builder, i int) pipeline.Event {
	n := uint64(i)
	e := pipeline.Event{
		Timestamp: time.Date(2026, 11, 27, 4, 5, 34, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond),
		ID:        "fl-" + strconv.Itoa(i),
		Series:    "tcp 10.0.0.1:443 10.0.0.2:51234",
		// Sized like the flows input's root map: room for what the pipeline
		// adds (pipeline.ReservedKeys).
		Fields: b.Root(8 + pipeline.ReservedKeys),
	}
	f := e.Fields
	f["event"] = b.Object(
		pipeline.String("dataset", "fleutan.flows"),
		pipeline.Int64("duration", int64(10*time.Second)),
		pipeline.String("kind", "metric"),
		pipeline.String("module", "fleutan"),
	)
	f["network"] = b.Object(
		pipeline.Uint64("bytes", 1_234_567+n),
		pipeline.String("community_id", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
		pipeline.String("direction", "ingress"),
		pipeline.String("iana_number", "6"),
		pipeline.Uint64("packets", uint64(4321+i)),
		pipeline.String("transport", "tcp"),
		pipeline.String("type", "ipv4"),
	)
	f["source"] = b.Object(
		pipeline.Uint64("bytes", 4567),
		pipeline.String("ip", "10.0.0.2"),
		pipeline.Uint64("packets", 89),
		pipeline.Int("port", 51234+i%1000),
	)
	f["destination"] = b.Object(
		pipeline.Uint64("bytes", 1_230_000+n),
		pipeline.String("ip", "10.0.0.1"),
		pipeline.Uint64("packets", 4232),
		pipeline.Int("port", 443),
	)
	f["process"] = b.Object(
		pipeline.Any("args", []string{"nginx", "-g", "daemon off;"}),
		pipeline.String("executable", "/usr/sbin/nginx"),
		pipeline.String("name", "nginx"),
		pipeline.Int("pid", 4242),
	)
	f["fleutan"] = b.Object(pipeline.Any("flow", b.Object(
		pipeline.Any("delta", b.Object(
			pipeline.Uint64("bytes_in", 120),
			pipeline.Uint64("bytes_out", 48_000),
			pipeline.Uint64("retrans", 0),
			pipeline.Uint64("segs_in", 3),
			pipeline.Uint64("segs_out", 34),
		)),
		pipeline.Uint64("inode", 987654),
		pipeline.Uint64("netns", 4026531840),
		pipeline.String("state", "ESTABLISHED"),
		pipeline.Any("tcp", b.Object(
			pipeline.Uint64("bdp_bytes", 14_662),
			pipeline.Uint64("bytes_acked", 1_230_000+n),
			pipeline.Uint64("bytes_received", 4567),
			pipeline.Uint64("bytes_retrans", 2896),
			pipeline.Uint64("bytes_sent", 1_230_100+n),
			pipeline.String("congestion", "cubic"),
			pipeline.Uint64("cwnd", 10),
			pipeline.Uint64("delivery_rate_bps", 95_000_000),
			pipeline.Uint64("lost", 0),
			pipeline.Uint64("min_rtt_us", 800),
			pipeline.Uint64("mss", 1448),
			pipeline.Uint64("notsent_bytes", 0),
			pipeline.Uint64("pacing_rate_bps", 190_000_000),
			pipeline.Uint64("rtt_us", 1234),
			pipeline.Uint64("rttvar_us", 321),
			pipeline.Uint64("segs_in", 90),
			pipeline.Uint64("segs_out", 4233),
			pipeline.Uint64("ssthresh", 2147483647),
			pipeline.Uint64("total_retrans", 2),
		)),
	)))
	return e
}
