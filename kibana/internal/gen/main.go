// Command gen writes the Kibana saved objects bundle (fleutan.ndjson):
// one data view, the Lens visualizations and the dashboards, in the
// export format of Kibana 8.x so later versions migrate them on import.
// Output is deterministic: encoding/json sorts map keys and objects are
// written in declaration order.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
)

// Kibana 8.x migration versions the objects are written at; an importing
// Kibana runs every migration newer than these.
const (
	coreMigration      = "8.8.0"
	lensMigration      = "8.9.0"
	dashboardMigration = "8.9.0"
	dataViewMigration  = "8.0.0"
	panelVersion       = "8.8.0"
)

const (
	dataViewID = "fleutan-metrics"
	layerID    = "layer1"
)

type m = map[string]any

// col is one Lens form-based column.
type col struct {
	id, label, op, field, dataType string
	bucketed                       bool
	params                         m
}

func (c col) json() m {
	scale := "ratio"
	if c.bucketed {
		scale = "ordinal"
	}
	if c.op == "date_histogram" {
		scale = "interval"
	}
	out := m{
		"label": c.label, "customLabel": true, "dataType": c.dataType,
		"operationType": c.op, "sourceField": c.field,
		"isBucketed": c.bucketed, "scale": scale,
	}
	if c.params != nil {
		out["params"] = c.params
	}
	return out
}

func date() col {
	return col{id: "time", label: "@timestamp", op: "date_histogram", field: "@timestamp", dataType: "date", bucketed: true,
		params: m{"interval": "auto", "includeEmptyRows": true, "dropPartials": false}}
}

func terms(id, label, field, dataType string, size int, orderBy string) col {
	return col{id: id, label: label, op: "terms", field: field, dataType: dataType, bucketed: true,
		params: m{"size": size, "orderBy": m{"type": "column", "columnId": orderBy}, "orderDirection": "desc",
			"otherBucket": false, "missingBucket": false, "parentFormat": m{"id": "terms"}}}
}

// fieldFormats are the Kibana field format ids of the fields whose unit
// has one, from the units the index templates declare: fractions (*.pct,
// 1 = 100%) show as percentages, byte counts as bytes.
func fieldFormats() map[string]string {
	out := map[string]string{}
	for _, f := range elasticsearch.Fields() {
		switch f.Unit {
		case elasticsearch.UnitFraction:
			out[f.Name] = "percent"
		case elasticsearch.UnitBytes:
			out[f.Name] = "bytes"
		}
	}
	return out
}

var formats = fieldFormats()

// metric is a value column; on a field with a format, an operation that
// keeps the field's unit (not a count) shows in that format.
func metric(id, label, op, field string) col {
	c := col{id: id, label: label, op: op, field: field, dataType: "number"}
	if f := formats[field]; f != "" && op != "unique_count" && op != "count" {
		c.params = m{"format": m{"id": f, "params": m{"decimals": 1}}}
	}
	return c
}

func pct(id, label, field string, p int) col {
	c := metric(id, label, "percentile", field)
	if c.params == nil {
		c.params = m{}
	}
	c.params["percentile"] = p
	return c
}

func unique(id, label, field string) col { return metric(id, label, "unique_count", field) }

// vis is one Lens visualization with a single data layer.
type vis struct {
	id, title, desc string
	query           string // KQL: clauses `field : "value"` and `field > n` joined by " and "
	cols            []col
	kind            string // bar_stacked, line, bar_horizontal, heatmap, table
	x, split        string
	y               []string // value columns (heat map: one)
	yAxis           string   // heat map row column
}

func (v vis) object() m {
	order := make([]string, len(v.cols))
	cols := m{}
	for i, c := range v.cols {
		order[i] = c.id
		cols[c.id] = c.json()
	}
	var vt string
	var viz m
	switch v.kind {
	case "heatmap":
		vt = "lnsHeatmap"
		viz = m{"shape": "heatmap", "layerId": layerID, "layerType": "data",
			"xAccessor": v.x, "yAccessor": v.yAxis, "valueAccessor": v.y[0],
			"legend": m{"isVisible": true, "position": "right", "type": "heatmap_legend"},
			"gridConfig": m{"type": "heatmap_grid", "isCellLabelVisible": false, "isYAxisLabelVisible": true,
				"isXAxisLabelVisible": true, "isYAxisTitleVisible": true, "isXAxisTitleVisible": true}}
	case "table":
		vt = "lnsDatatable"
		tc := make([]any, len(order))
		for i, id := range order {
			tc[i] = m{"columnId": id}
		}
		viz = m{"layerId": layerID, "layerType": "data", "columns": tc}
	default:
		vt = "lnsXY"
		layer := m{"layerId": layerID, "layerType": "data", "seriesType": v.kind, "xAccessor": v.x, "accessors": v.y}
		if v.split != "" {
			layer["splitAccessor"] = v.split
		}
		viz = m{"preferredSeriesType": v.kind, "layers": []any{layer},
			"legend": m{"isVisible": true, "position": "right"}, "valueLabels": "hide"}
	}
	return m{
		"type": "lens", "id": v.id,
		"attributes": m{
			"title": v.title, "description": v.desc, "visualizationType": vt,
			"state": m{
				"datasourceStates": m{"formBased": m{"layers": m{layerID: m{
					"columnOrder": order, "columns": cols, "incompleteColumns": m{}}}}},
				"visualization":      viz,
				"query":              m{"query": v.query, "language": "kuery"},
				"filters":            []any{},
				"adHocDataViews":     m{},
				"internalReferences": []any{},
			},
		},
		"references": []any{
			m{"type": "index-pattern", "id": dataViewID, "name": "indexpattern-datasource-layer-" + layerID},
		},
		"coreMigrationVersion": coreMigration, "typeMigrationVersion": lensMigration,
	}
}

type dashboard struct {
	id, title, desc string
	panels          []vis
}

func (d dashboard) object() m {
	var panels []any
	var refs []any
	for i, v := range d.panels {
		idx := fmt.Sprintf("p%d", i+1)
		// Two panels a row, each half of the 48-column grid.
		panels = append(panels, m{
			"version": panelVersion, "type": "lens", "panelIndex": idx,
			"gridData":         m{"x": (i % 2) * 24, "y": (i / 2) * 15, "w": 24, "h": 15, "i": idx},
			"embeddableConfig": m{"enhancements": m{}},
			"title":            v.title,
			"panelRefName":     "panel_" + idx,
		})
		refs = append(refs, m{"type": "lens", "id": v.id, "name": idx + ":panel_" + idx})
	}
	// The host control filters every panel, so one dashboard serves a fleet.
	ctrlID := d.id + "-host"
	controls := m{ctrlID: m{"order": 0, "width": "medium", "grow": true, "type": "optionsListControl",
		"explicitInput": m{"id": ctrlID, "fieldName": "host.name", "title": "Host", "dataViewId": dataViewID,
			"searchTechnique": "prefix", "selectedOptions": []any{}}}}
	refs = append(refs, m{"type": "index-pattern", "id": dataViewID, "name": "controlGroup_" + ctrlID + ":optionsListDataView"})
	return m{
		"type": "dashboard", "id": d.id,
		"attributes": m{
			"title": d.title, "description": d.desc, "timeRestore": false, "version": 1,
			"panelsJSON":  mustString(panels),
			"optionsJSON": mustString(m{"useMargins": true, "syncColors": false, "syncCursor": true, "syncTooltips": false, "hidePanelTitles": false}),
			"kibanaSavedObjectMeta": m{"searchSourceJSON": mustString(m{
				"query": m{"query": "", "language": "kuery"}, "filter": []any{}})},
			"controlGroupInput": m{
				"controlStyle": "oneLine", "chainingSystem": "HIERARCHICAL",
				"panelsJSON":               mustString(controls),
				"ignoreParentSettingsJSON": mustString(m{"ignoreFilters": false, "ignoreQuery": false, "ignoreTimerange": false, "ignoreValidations": false}),
			},
		},
		"references":           refs,
		"coreMigrationVersion": coreMigration, "typeMigrationVersion": dashboardMigration,
	}
}

func dataView() m {
	return m{
		"type": "index-pattern", "id": dataViewID,
		"attributes": m{"title": "metrics-fleutan.*", "name": "fleutanbeat metrics", "timeFieldName": "@timestamp",
			"allowNoIndex": true, "fieldFormatMap": mustString(dataViewFormats())},
		"references":           []any{},
		"coreMigrationVersion": coreMigration, "typeMigrationVersion": dataViewMigration,
	}
}

// dataViewFormats is the data view's fieldFormatMap: every field with a
// format, so Discover and new visualizations show them the same way.
func dataViewFormats() m {
	out := m{}
	for field, id := range formats {
		out[field] = m{"id": id}
	}
	return out
}

func mustString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of literals: a failure is a bug in this generator
	}
	return string(b)
}

const (
	qCPU   = `data_stream.dataset : "fleutan.cpu"`
	qQdisc = `data_stream.dataset : "fleutan.qdisc"`
	qFlows = `data_stream.dataset : "fleutan.flows"`
	qPaths = `data_stream.dataset : "fleutan.paths"`
	qRDMA  = `data_stream.dataset : "fleutan.rdma"`
	// qRDMAProcs are the cpu input's events of processes that own RDMA
	// queue pairs: the cores their RDMA traffic is driven from.
	qRDMAProcs = qCPU + ` and fleutan.cpu.rdma_qps > 0`
	// qPathChanges are the path events of a peer whose path hash differs
	// from its previous round's.
	qPathChanges = qPaths + ` and fleutan.paths.type : "path" and fleutan.paths.changed : true`
	// qFlowRTT keeps the events of flows that sent in their period: an idle
	// flow's tcp_info holds its last RTT sample, not a new one, and these
	// are the same events under report: all and report: active, so the
	// percentiles and counts do not depend on the mode.
	qFlowRTT = qFlows + ` and fleutan.flow.tcp.rtt_us > 0 and fleutan.flow.delta.segs_out > 0`
)

func dashboards() []dashboard {
	return []dashboard{
		{id: "fleutan-flows-and-cores", title: "[fleutanbeat] Flows and cores",
			desc: "Which cores each process runs on, processes spread over many cores (affinity candidates), network softirqs per core and flows per process.",
			panels: []vis{
				{id: "fleutan-cpu-process-core-heatmap", title: "CPU % by process and core", kind: "heatmap",
					query: qCPU + ` and fleutan.cpu.scope : "process_core"`,
					cols: []col{
						terms("core", "Core", "fleutan.cpu.core", "number", 64, "pct"),
						terms("proc", "Process", "process.name", "string", 20, "pct"),
						metric("pct", "CPU %", "average", "fleutan.cpu.pct"),
					}, x: "core", yAxis: "proc", y: []string{"pct"}},
				{id: "fleutan-cpu-affinity-candidates", title: "Affinity candidates: spread and migrations", kind: "table",
					query: qCPU + ` and fleutan.cpu.scope : "process"`,
					cols: []col{
						terms("proc", "Process", "process.name", "string", 20, "spread"),
						metric("spread", "Max spread", "max", "fleutan.cpu.spread"),
						metric("migrations", "Migrations", "sum", "fleutan.cpu.migrations"),
						metric("cores", "Max cores used", "max", "fleutan.cpu.cores_used"),
						metric("pct", "Average CPU %", "average", "fleutan.cpu.pct"),
					}},
				{id: "fleutan-cpu-net-rx-softirqs", title: "NET_RX softirqs per core", kind: "bar_stacked",
					query: qCPU + ` and fleutan.cpu.scope : "core"`,
					cols: []col{date(), terms("core", "Core", "fleutan.cpu.core", "number", 64, "rx"),
						metric("rx", "NET_RX softirqs", "sum", "fleutan.cpu.softirq.net_rx")},
					x: "time", split: "core", y: []string{"rx"}},
				{id: "fleutan-cpu-net-tx-softirqs", title: "NET_TX softirqs per core", kind: "bar_stacked",
					query: qCPU + ` and fleutan.cpu.scope : "core"`,
					cols: []col{date(), terms("core", "Core", "fleutan.cpu.core", "number", 64, "tx"),
						metric("tx", "NET_TX softirqs", "sum", "fleutan.cpu.softirq.net_tx")},
					x: "time", split: "core", y: []string{"tx"}},
				{id: "fleutan-cpu-flows-per-process", title: "Flows per process", kind: "bar_horizontal",
					query: qCPU + ` and fleutan.cpu.scope : "process"`,
					cols: []col{terms("proc", "Process", "process.name", "string", 20, "flows"),
						metric("flows", "Flows", "max", "fleutan.cpu.flows")},
					x: "proc", y: []string{"flows"}},
			}},
		{id: "fleutan-tx-queues", title: "[fleutanbeat] TX queues",
			desc: "Bytes and packets per transmit queue, drops, backlog and requeues per qdisc, and the flows that load each queue.",
			panels: []vis{
				{id: "fleutan-qdisc-queue-bytes", title: "Bytes per TX queue", kind: "line",
					query: qQdisc + ` and fleutan.qdisc.scope : "qdisc" and fleutan.qdisc.tx_queue >= 0`,
					cols: []col{date(), terms("queue", "TX queue", "fleutan.qdisc.tx_queue", "number", 64, "bytes"),
						metric("bytes", "Bytes", "sum", "fleutan.qdisc.delta.bytes")},
					x: "time", split: "queue", y: []string{"bytes"}},
				{id: "fleutan-qdisc-queue-packets", title: "Packets per TX queue", kind: "line",
					query: qQdisc + ` and fleutan.qdisc.scope : "qdisc" and fleutan.qdisc.tx_queue >= 0`,
					cols: []col{date(), terms("queue", "TX queue", "fleutan.qdisc.tx_queue", "number", 64, "packets"),
						metric("packets", "Packets", "sum", "fleutan.qdisc.delta.packets")},
					x: "time", split: "queue", y: []string{"packets"}},
				{id: "fleutan-qdisc-drops-backlog", title: "Drops, backlog and requeues per qdisc", kind: "table",
					query: qQdisc + ` and fleutan.qdisc.scope : "qdisc"`,
					cols: []col{
						terms("device", "Device", "fleutan.qdisc.device", "string", 20, "drops"),
						terms("handle", "Handle", "fleutan.qdisc.handle", "string", 20, "drops"),
						metric("drops", "Drops", "sum", "fleutan.qdisc.delta.drops"),
						metric("backlog", "Max backlog bytes", "max", "fleutan.qdisc.backlog_bytes"),
						metric("requeues", "Requeues", "sum", "fleutan.qdisc.delta.requeues"),
					}},
				{id: "fleutan-qdisc-top-flows", title: "Top flows per TX queue", kind: "table",
					query: qQdisc + ` and fleutan.qdisc.scope : "flow"`,
					cols: []col{
						terms("queue", "TX queue", "fleutan.qdisc.tx_queue", "number", 16, "bytes"),
						terms("peer", "Destination", "destination.ip", "ip", 10, "bytes"),
						metric("bytes", "Bytes", "sum", "fleutan.qdisc.delta.bytes"),
					}},
			}},
		{id: "fleutan-flow-latency", title: "[fleutanbeat] Flow latency",
			desc: "TCP round-trip times: distribution over time, flows by RTT band (10, 20 and 100 ms thresholds), by peer and by process.",
			panels: []vis{
				{id: "fleutan-flow-rtt-distribution", title: "RTT distribution (µs)", kind: "line", query: qFlowRTT,
					cols: []col{date(), pct("p50", "p50 RTT (µs)", "fleutan.flow.tcp.rtt_us", 50),
						pct("p95", "p95 RTT (µs)", "fleutan.flow.tcp.rtt_us", 95),
						pct("p99", "p99 RTT (µs)", "fleutan.flow.tcp.rtt_us", 99)},
					x: "time", y: []string{"p50", "p95", "p99"}},
				{id: "fleutan-flow-rtt-bands", title: "Flows by RTT", kind: "bar_stacked", query: qFlowRTT,
					cols: []col{
						{id: "band", label: "RTT", op: "range", field: "fleutan.flow.tcp.rtt_us", dataType: "number", bucketed: true,
							params: m{"type": "range", "maxBars": "auto", "parentFormat": m{"id": "range"},
								"ranges": []any{
									m{"from": 0, "to": 10000, "label": "< 10 ms"},
									m{"from": 10000, "to": 20000, "label": "10–20 ms"},
									m{"from": 20000, "to": 100000, "label": "20–100 ms"},
									m{"from": 100000, "to": nil, "label": "≥ 100 ms"},
								}}},
						unique("flows", "Flows", "network.community_id"),
					}, x: "band", y: []string{"flows"}},
				{id: "fleutan-flow-rtt-by-peer", title: "RTT by peer", kind: "table", query: qFlowRTT,
					cols: []col{terms("peer", "Peer", "fleutan.flow.remote.ip", "ip", 20, "p95"),
						pct("p50", "p50 RTT (µs)", "fleutan.flow.tcp.rtt_us", 50),
						pct("p95", "p95 RTT (µs)", "fleutan.flow.tcp.rtt_us", 95),
						unique("flows", "Flows", "network.community_id")}},
				{id: "fleutan-flow-rtt-by-process", title: "RTT by process", kind: "table", query: qFlowRTT,
					cols: []col{terms("proc", "Process", "process.name", "string", 20, "p95"),
						pct("p50", "p50 RTT (µs)", "fleutan.flow.tcp.rtt_us", 50),
						pct("p95", "p95 RTT (µs)", "fleutan.flow.tcp.rtt_us", 95),
						unique("flows", "Flows", "network.community_id")}},
			}},
		{id: "fleutan-flow-volumes", title: "[fleutanbeat] Flow volumes",
			desc: "Top talkers by bytes in and out, retransmissions and bandwidth-delay product per flow.",
			panels: []vis{
				{id: "fleutan-flow-top-talkers-out", title: "Top talkers by bytes out", kind: "bar_horizontal", query: qFlows,
					cols: []col{terms("peer", "Peer", "fleutan.flow.remote.ip", "ip", 10, "out"),
						metric("out", "Bytes out", "sum", "fleutan.flow.delta.bytes_out")},
					x: "peer", y: []string{"out"}},
				{id: "fleutan-flow-top-talkers-in", title: "Top talkers by bytes in", kind: "bar_horizontal", query: qFlows,
					cols: []col{terms("peer", "Peer", "fleutan.flow.remote.ip", "ip", 10, "in"),
						metric("in", "Bytes in", "sum", "fleutan.flow.delta.bytes_in")},
					x: "peer", y: []string{"in"}},
				{id: "fleutan-flow-retransmissions", title: "Retransmissions by process", kind: "bar_stacked", query: qFlows,
					cols: []col{date(), terms("proc", "Process", "process.name", "string", 10, "retrans"),
						metric("retrans", "Retransmitted segments", "sum", "fleutan.flow.delta.retrans")},
					x: "time", split: "proc", y: []string{"retrans"}},
				{id: "fleutan-flow-bdp", title: "Bandwidth-delay product per flow", kind: "table", query: qFlowRTT,
					cols: []col{
						terms("proc", "Process", "process.name", "string", 10, "bdp"),
						terms("peer", "Peer", "fleutan.flow.remote.ip", "ip", 10, "bdp"),
						terms("port", "Peer port", "fleutan.flow.remote.port", "number", 5, "bdp"),
						metric("bdp", "Max BDP bytes", "max", "fleutan.flow.tcp.bdp_bytes"),
						metric("rtt", "Max RTT (µs)", "max", "fleutan.flow.tcp.rtt_us"),
						metric("rate", "Max delivery rate (bit/s)", "max", "fleutan.flow.tcp.delivery_rate_bps"),
					}},
			}},
		{id: "fleutan-paths", title: "[fleutanbeat] Paths",
			desc: "The network paths to the peers of the host's flows: when each peer's path changed, every hop by round-trip time and loss, and how many peers' paths left their previous path at each hop.",
			panels: []vis{
				{id: "fleutan-paths-changes", title: "Path changes per peer", kind: "bar_stacked", query: qPathChanges,
					cols: []col{date(), terms("peer", "Peer", "fleutan.paths.peer.ip", "ip", 20, "paths"),
						unique("paths", "New paths", "fleutan.paths.hash")},
					x: "time", split: "peer", y: []string{"paths"}},
				{id: "fleutan-paths-hops-by-rtt", title: "Hops by RTT", kind: "table",
					query: qPaths + ` and fleutan.paths.type : "hop" and fleutan.paths.hop.received > 0`,
					cols: []col{terms("hop", "Hop", "fleutan.paths.hop.addrs", "ip", 50, "rtt"),
						metric("rtt", "Average RTT (µs)", "average", "fleutan.paths.hop.rtt_mean_us"),
						metric("min", "Min RTT (µs)", "min", "fleutan.paths.hop.rtt_min_us"),
						metric("loss", "Average loss", "average", "fleutan.paths.hop.loss.pct"),
						unique("peers", "Peers", "fleutan.paths.peer.ip")}},
				{id: "fleutan-paths-per-peer", title: "Paths per peer", kind: "table",
					query: qPaths + ` and fleutan.paths.type : "path"`,
					cols: []col{terms("peer", "Peer", "fleutan.paths.peer.ip", "ip", 50, "paths"),
						unique("paths", "Distinct paths", "fleutan.paths.hash"),
						metric("hops", "Max hops", "max", "fleutan.paths.hop_count"),
						unique("flows", "Flows", "fleutan.paths.flows.community_ids")}},
				{id: "fleutan-paths-divergent-hops", title: "Peers per first divergent hop", kind: "bar_horizontal", query: qPathChanges,
					cols: []col{terms("hop", "First divergent hop", "fleutan.paths.first_divergent_hop.addrs", "ip", 20, "peers"),
						unique("peers", "Peers", "fleutan.paths.peer.ip")},
					x: "hop", y: []string{"peers"}},
			}},
		rdmaDashboard(),
	}
}

// rdmaDashboard is the RDMA panel set, a dashboard of its own: RDMA
// traffic bypasses the sockets and TCP statistics the flow dashboards
// read, and a host without RDMA has nothing to show in it.
func rdmaDashboard() dashboard {
	return dashboard{id: "fleutan-rdma", title: "[fleutanbeat] RDMA",
		desc: "RDMA queue pairs: the processes that own them with the cores they run on, send PSN activity over time, port hardware counter rates (sent and received packets, retries, out-of-sequence requests) and the RDMA CM endpoints.",
		panels: []vis{
			{id: "fleutan-rdma-process-qps-cores", title: "Queue pairs per process and their cores", kind: "table",
				query: qRDMAProcs + ` and fleutan.cpu.scope : "process"`,
				cols: []col{
					terms("proc", "Process", "process.name", "string", 20, "qps"),
					metric("qps", "Max queue pairs", "max", "fleutan.cpu.rdma_qps"),
					metric("cores", "Max cores used", "max", "fleutan.cpu.cores_used"),
					metric("pct", "Average CPU %", "average", "fleutan.cpu.pct"),
					metric("migrations", "Migrations", "sum", "fleutan.cpu.migrations"),
				}},
			{id: "fleutan-rdma-process-core-heatmap", title: "CPU % of RDMA processes by core", kind: "heatmap",
				query: qRDMAProcs + ` and fleutan.cpu.scope : "process_core"`,
				cols: []col{
					terms("core", "Core", "fleutan.cpu.core", "number", 64, "pct"),
					terms("proc", "Process", "process.name", "string", 20, "pct"),
					metric("pct", "CPU %", "average", "fleutan.cpu.pct"),
				}, x: "core", yAxis: "proc", y: []string{"pct"}},
			{id: "fleutan-rdma-psn-activity", title: "Send PSN advance per process", kind: "line",
				query: qRDMA + ` and fleutan.rdma.scope : "qp"`,
				cols: []col{date(), terms("proc", "Process", "process.name", "string", 10, "sq"),
					metric("sq", "Send PSN advance (packets)", "sum", "fleutan.rdma.delta.sq_psn")},
				x: "time", split: "proc", y: []string{"sq"}},
			{id: "fleutan-rdma-counter-rates", title: "Port counter rates", kind: "line",
				query: qRDMA + ` and fleutan.rdma.scope : "counter"`,
				cols: []col{date(), terms("counter", "Counter", "fleutan.rdma.counter.name", "string", 20, "rate"),
					metric("rate", "Rate (/s)", "average", "fleutan.rdma.counter.rate")},
				x: "time", split: "counter", y: []string{"rate"}},
			{id: "fleutan-rdma-port-counters", title: "Port counters per device", kind: "table",
				query: qRDMA + ` and fleutan.rdma.scope : "counter"`,
				cols: []col{
					terms("device", "Device", "fleutan.rdma.device", "string", 20, "delta"),
					terms("counter", "Counter", "fleutan.rdma.counter.name", "string", 50, "delta"),
					metric("delta", "Increase", "sum", "fleutan.rdma.counter.delta"),
					metric("rate", "Max rate (/s)", "max", "fleutan.rdma.counter.rate"),
					metric("value", "Last value (max)", "max", "fleutan.rdma.counter.value"),
				}},
			{id: "fleutan-rdma-endpoints", title: "RDMA CM endpoints", kind: "table",
				query: qRDMA + ` and fleutan.rdma.scope : "qp"`,
				cols: []col{
					terms("src", "Source (initiator)", "source.ip", "ip", 20, "conns"),
					terms("dst", "Destination", "destination.ip", "ip", 20, "conns"),
					terms("dport", "Destination port", "destination.port", "number", 10, "conns"),
					unique("conns", "Connections", "fleutan.rdma.flow_id"),
					metric("sq", "Send PSN advance (packets)", "sum", "fleutan.rdma.delta.sq_psn"),
				}},
		}}
}

func main() {
	out := flag.String("o", "fleutan.ndjson", "output file")
	flag.Parse()
	var buf bytes.Buffer
	write := func(o m) {
		b, err := json.Marshal(o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	write(dataView())
	ds := dashboards()
	for _, d := range ds {
		for _, v := range d.panels {
			write(v.object())
		}
	}
	for _, d := range ds {
		write(d.object())
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
