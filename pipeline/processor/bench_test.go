package processor

import (
	"testing"

	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

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
		// As the flows input builds them: typed, key-ordered objects.
		events[i] = codectest.FlowEvent(i)
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
