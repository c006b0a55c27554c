package pipeline

// metricHelp says what each metric counts, keyed by its dotted name (for a
// labeled family, the name without the label). /metrics prints it as the
// family's HELP line; the README's Monitoring table says the same in
// prose. A metric added anywhere needs a row here: the agent's tests fail
// on a family that has none.
var metricHelp = map[string]string{
	// The pipeline (pipeline/run.go, client.go).
	"pipeline.events.published":        "Events that passed the processors into the queue.",
	"pipeline.events.filtered":         "Events a processor removed (drop_event and the like).",
	"pipeline.events.processor_errors": "Processor runs that returned an error, each logged.",
	"pipeline.events.acked":            "Events the output acknowledged (stored, duplicate or dead-lettered).",
	"pipeline.events.retried":          "Events handed to the output again after a failed attempt.",
	"pipeline.events.dropped":          "Events given up for good, by reason.",
	"pipeline.events.inflight":         "Events taken from the queue and not yet final.",
	"pipeline.queue.events":            "Events waiting in the queue.",
	"pipeline.queue.capacity":          "Events the memory queue holds at most.",

	// The disk queue (pipeline/diskqueue).
	"pipeline.queue.disk.bytes":             "Bytes of records in the disk queue's segments.",
	"pipeline.queue.disk.records":           "Records in the disk queue not yet acknowledged.",
	"pipeline.queue.disk.oldest_age_ms":     "Age in milliseconds of the oldest record in the disk queue.",
	"pipeline.queue.disk.sequence":          "Records ever written to the disk queue's directory.",
	"pipeline.queue.disk.corrupted.regions": "Damaged regions the disk queue skipped when reading its segments.",
	"pipeline.queue.disk.corrupted.bytes":   "Bytes the disk queue skipped in damaged regions.",
	"pipeline.queue.disk.dropped":           "Records the full disk queue dropped with its oldest segment (on_full: drop_oldest).",

	// The active output, Beats' names (the MetricOutput* constants).
	MetricOutputType:        "The active output; the value label names it.",
	MetricOutputBatches:     "Publish calls to the output, retries included.",
	MetricOutputTotal:       "Events handed to the output, each retry counted again.",
	MetricOutputActive:      "Events inside a Publish call of the output now.",
	MetricOutputAcked:       "Events the destination newly stored.",
	MetricOutputDuplicates:  "Events the destination already had (Elasticsearch 409).",
	MetricOutputDeadLetter:  "Events stored in the dead-letter index instead of their own.",
	MetricOutputDropped:     "Events the output refused for good.",
	MetricOutputFailed:      "Events that failed and are to be sent again.",
	MetricOutputTooMany:     "Events refused with 429 Too Many Requests.",
	MetricOutputWriteBytes:  "Bytes the output wrote: on the wire with TLS, or flushed to the file.",
	MetricOutputWriteErrors: "Write errors of the output.",
	MetricOutputReadBytes:   "Bytes the output read from the wire, TLS included.",
	MetricOutputReadErrors:  "Read errors of the output.",
	MetricOutputLatencySum:  "Microseconds spent in Publish calls, summed over all calls.",
	MetricOutputLatencyMax:  "Microseconds of the longest Publish call.",

	// The outputs' own detail.
	"output.elasticsearch.events.acked":             "Bulk items Elasticsearch newly stored.",
	"output.elasticsearch.events.duplicates":        "Bulk items Elasticsearch already had (409).",
	"output.elasticsearch.events.retried":           "Bulk items to be sent again.",
	"output.elasticsearch.events.dropped":           "Bulk items refused for good.",
	"output.elasticsearch.events.dead_lettered":     "Bulk items stored in the dead-letter index.",
	"output.elasticsearch.events.blocked":           "Retries of bulk items refused by a write block or a missing privilege.",
	"output.elasticsearch.events.resent_without_id": "Bulk items a time series data stream refused for their _id, sent again without one.",
	"output.elasticsearch.resends":                  "Bulk requests that sent again, without _id, items a time series data stream refused for their _id.",
	"output.elasticsearch.host.requests":            "HTTP requests sent to an Elasticsearch host, by host.",
	"output.elasticsearch.host.connection_errors":   "Requests to an Elasticsearch host that got no answer (refused, reset, timed out), by host.",
	"output.elasticsearch.failovers":                "Requests moved to another Elasticsearch host after a connection error.",
	"output.opensearch.events.acked":                "Bulk items OpenSearch newly stored.",
	"output.opensearch.events.duplicates":           "Bulk items OpenSearch already had (409).",
	"output.opensearch.events.retried":              "Bulk items to be sent again.",
	"output.opensearch.events.dropped":              "Bulk items refused for good.",
	"output.opensearch.events.dead_lettered":        "Bulk items stored in the dead-letter index.",
	"output.opensearch.events.blocked":              "Retries of bulk items refused by a write block or a missing privilege.",
	"output.opensearch.events.resent_without_id":    "Bulk items a data stream refused for their _id, sent again without one (Elasticsearch's time series data streams; OpenSearch has none).",
	"output.opensearch.resends":                     "Bulk requests that sent again, without _id, items a data stream refused for their _id.",
	"output.opensearch.host.requests":               "HTTP requests sent to an OpenSearch host, by host.",
	"output.opensearch.host.connection_errors":      "Requests to an OpenSearch host that got no answer (refused, reset, timed out), by host.",
	"output.opensearch.failovers":                   "Requests moved to another OpenSearch host after a connection error.",
	"output.logstash.connections.opened":            "Connections opened to Logstash hosts.",
	"output.logstash.connections.errors":            "Failed attempts to connect to a Logstash host.",

	// Inputs: input.NewCounters gives each type the first three.
	"input.flows.collections":               "Periods the flows input completed.",
	"input.flows.events":                    "Events the flows input published.",
	"input.flows.errors":                    "Failures of the flows input, each logged as a warning.",
	"input.flows.kernel_unsupported":        "Failed kernel requests for a feature the kernel lacks (a sock_diag module, traffic control); each feature is logged once.",
	"input.flows.dropped_over_max_flows":    "Flows left out because a collection exceeded max_flows.",
	"input.flows.skipped_unchanged":         "Flows left without an event in a period by report: active (unchanged since their last event, heartbeat not due).",
	"input.flows.rollup_events":             "Per-process rollup events the flows input published (rollup: true); input.flows.events includes them.",
	"input.flows.unattributed":              "Live sockets left without a process, summed over collections, by reason.",
	"input.flows.ebpf.dropped_ring_full":    "Closed connections the kernel could not queue (eBPF ring buffer full).",
	"input.flows.ebpf.dropped_map_full":     "Connections not tracked because the eBPF map was full.",
	"input.flows.ebpf.dropped_pending_full": "Closed connections dropped because user space held too many already.",
	"input.flows.ebpf.bad_records":          "eBPF records that did not decode.",
	"input.cpu.collections":                 "Periods the cpu input completed.",
	"input.cpu.events":                      "Events the cpu input published.",
	"input.cpu.errors":                      "Failures of the cpu input, each logged as a warning.",
	"input.cpu.kernel_unsupported":          "Failed kernel requests for a feature the kernel lacks (a sock_diag module, traffic control); each feature is logged once.",
	"input.cpu.method":                      "How the cpu input measures (ebpf or sampling); the value label names it.",
	"input.qdisc.collections":               "Periods the qdisc input completed.",
	"input.qdisc.events":                    "Events the qdisc input published.",
	"input.qdisc.errors":                    "Failures of the qdisc input, each logged as a warning.",
	"input.qdisc.kernel_unsupported":        "Failed kernel requests for a feature the kernel lacks (a sock_diag module, traffic control); each feature is logged once.",
	"input.qdisc.flow_attribution":          "How the qdisc input attributes flows to queues (tracepoint, raw_tracepoint or off); the value label names it.",
	"input.qdisc.ebpf_evictions":            "Flow entries the kernel evicted from the full eBPF map between two periods.",
	"input.rdma.collections":                "Periods the rdma input completed.",
	"input.rdma.events":                     "Events the rdma input published.",
	"input.rdma.errors":                     "Failures of the rdma input, each logged as a warning.",
}

// MetricHelp returns what the metric with the dotted name counts, and
// whether it is known.
func MetricHelp(name string) (string, bool) {
	h, ok := metricHelp[name]
	return h, ok
}
