// Package benchmark is the benchmark input (dataset fleutan.benchmark), as
// Filebeat's input of that name: synthetic events for load tests of the
// pipeline and the output, never enabled by default. Each event is a
// fleutan.flows event in shape (built by the flows input's own event code
// from a synthetic established TCP flow with a process, tcp_info and
// deltas) under the dataset fleutan.benchmark, so it is stored apart from
// the real flows and counted on its own.
//
//	fleutanbeat.inputs:
//	  - type: benchmark
//	    count: 200000   # events in all, then the input stops (0: no end)
//	    eps: 0          # events per second (0: as fast as the queue takes them)
//	    flows: 1000     # distinct synthetic flows the events cycle through
//
// count or eps must be set: an input that floods without end is a
// mistake. Events of one round (one event per flow) share a timestamp and
// rounds have strictly increasing ones, so every event has its own
// deterministic id: a retried event is a duplicate to Elasticsearch, never
// a second document. /stats counts input.benchmark.events (published) and
// input.benchmark.collections (rounds).
package benchmark
