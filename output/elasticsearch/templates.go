package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/fleutan/fleutanbeat/output"
)

// Template kinds, which are also the REST paths that install them.
const (
	KindComponent = "_component_template"
	KindIndex     = "_index_template"
)

// Template is one component or composable index template.
type Template struct {
	Kind string // KindComponent or KindIndex
	Name string
	Body map[string]any
}

// Path is the REST path that installs the template with PUT.
func (t Template) Path() string { return "/" + t.Kind + "/" + t.Name }

// Datasets are the datasets the agent ships, with their own fields, that
// every Linux host produces.
var Datasets = []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc", "fleutan.paths"}

// DeviceDatasets are shipped and mapped like Datasets but need hardware
// most hosts lack (RDMA devices), so no run can expect their documents.
var DeviceDatasets = []string{"fleutan.rdma"}

// AllDatasets are Datasets and DeviceDatasets: every dataset the
// templates map.
func AllDatasets() []string { return append(append([]string(nil), Datasets...), DeviceDatasets...) }

const commonComponent = "fleutan@mappings"

// TimeSeriesDatasets are the datasets whose data streams are time series
// data streams (index.mode: time_series) under setup.template.index_mode:
// time_series. Each of their events is told apart from every other one
// of the same @timestamp by its dimensions (tsDimensions): Elasticsearch
// derives a TSDS document's _id from them and the timestamp, so two
// events with equal dimensions and time would be one document.
var TimeSeriesDatasets = []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"}

// tsDimensions are the dimension fields (time_series_dimension: true).
// Every pair of events of one agent, dataset and @timestamp that the
// pipeline gives different ids (they differ in Event.Series) differs in
// one of them:
//   - flows: fleutan.flow.id is a hash of the flow's series key (netns,
//     protocol, addresses, inode, and the socket cookie of a connection
//     that lived between two collections), or of a rollup's process (pid
//     and start time);
//   - cpu: the scope, the core and the process;
//   - qdisc: device and namespace, scope, handle, parent and kind, the
//     TX queue, and for scope flow the socket and its addresses.
//
// The mapping parameters are also accepted by standard indices, so the
// component templates are the same in both index modes.
var tsDimensions = map[string]bool{
	"agent.id": true, "host.name": true, "process.pid": true,
	"network.iana_number": true, "source.ip": true, "source.port": true,
	"destination.ip": true, "destination.port": true,
	"fleutan.flow.id":   true,
	"fleutan.cpu.scope": true, "fleutan.cpu.core": true,
	"fleutan.qdisc.scope": true, "fleutan.qdisc.netns": true, "fleutan.qdisc.device": true,
	"fleutan.qdisc.kind": true, "fleutan.qdisc.handle": true, "fleutan.qdisc.parent": true,
	"fleutan.qdisc.tx_queue": true, "fleutan.qdisc.other": true,
	"fleutan.qdisc.socket_inode": true, "fleutan.qdisc.socket_netns": true,
}

// tsRoutingPath is index.routing_path of the time series data streams:
// every event has an agent.id, so one agent's series share a shard.
var tsRoutingPath = []string{"agent.id"}

// Field types are only ones the server itself provides: the integration
// test distribution lacks mapper-extras (scaled_float, match_only_text),
// constant_keyword, wildcard and unsigned_long, and so may a user's
// minimal cluster. uint64 counters map to long (they stay below 2^63).
var commonFields = map[string]string{
	"@timestamp":            "date",
	"message":               "keyword",
	"tags":                  "keyword",
	"event.dataset":         "keyword",
	"event.module":          "keyword",
	"event.kind":            "keyword",
	"event.duration":        "long",
	"event.id":              "keyword",
	"agent.type":            "keyword",
	"agent.version":         "keyword",
	"agent.id":              "keyword",
	"agent.name":            "keyword",
	"agent.ephemeral_id":    "keyword",
	"data_stream.type":      "keyword",
	"data_stream.dataset":   "keyword",
	"data_stream.namespace": "keyword",
	"host.name":             "keyword",
	"host.hostname":         "keyword",
	"host.id":               "keyword",
	"host.architecture":     "keyword",
	"host.ip":               "ip",
	"host.mac":              "keyword",
	"host.containerized":    "boolean",
	"host.os.type":          "keyword",
	"host.os.family":        "keyword",
	"host.os.name":          "keyword",
	"host.os.platform":      "keyword",
	"host.os.version":       "keyword",
	"host.os.kernel":        "keyword",
	"host.os.codename":      "keyword",
	// The time a collection took, apart from event.duration (the time the
	// event covers).
	"fleutan.collection.duration_us": "long",
	// ECS network fields, shared by flows and qdisc flow samples.
	"network.transport":    "keyword",
	"network.type":         "keyword",
	"network.iana_number":  "keyword",
	"network.direction":    "keyword",
	"network.community_id": "keyword",
	"network.bytes":        "long",
	"network.packets":      "long",
	"source.ip":            "ip",
	"source.port":          "long",
	"source.bytes":         "long",
	"source.packets":       "long",
	"destination.ip":       "ip",
	"destination.port":     "long",
	"destination.bytes":    "long",
	"destination.packets":  "long",
	"process.pid":          "long",
	"process.name":         "keyword",
	"process.executable":   "keyword",
	"process.args":         "keyword",
	"process.parent.pid":   "long",
	"user.id":              "keyword",
	"user.name":            "keyword",
	"error.type":           "keyword",
	"error.message":        "keyword",
}

var datasetFields = map[string]map[string]string{
	"fleutan.flows": withRollup(withPrefix("fleutan.flow.", map[string]string{
		"id":       "keyword",
		"local.ip": "ip", "local.port": "long", "remote.ip": "ip", "remote.port": "long",
		"state": "keyword", "inode": "long", "netns": "long", "netns_name": "keyword",
		"direction": "keyword", "final": "boolean", "tx_queue": "long",
		"route.device": "keyword", "route.gateway": "ip", "route.src": "ip",
		"tcp.rtt_us": "long", "tcp.rttvar_us": "long", "tcp.min_rtt_us": "long", "tcp.cwnd": "long",
		"tcp.ssthresh": "long", "tcp.mss": "long", "tcp.bytes_acked": "long", "tcp.bytes_received": "long",
		"tcp.bytes_sent": "long", "tcp.bytes_retrans": "long", "tcp.segs_in": "long", "tcp.segs_out": "long",
		"tcp.total_retrans": "long", "tcp.lost": "long", "tcp.delivery_rate_bps": "long",
		"tcp.pacing_rate_bps": "long", "tcp.notsent_bytes": "long", "tcp.congestion": "keyword",
		"tcp.bdp_bytes":  "long",
		"delta.bytes_in": "long", "delta.bytes_out": "long", "delta.segs_in": "long",
		"delta.segs_out": "long", "delta.retrans": "long",
	})),
	"fleutan.cpu": withPrefix("fleutan.cpu.", map[string]string{
		"scope": "keyword", "core": "long", "pct": "double", "norm.pct": "double", "share": "double",
		"cores_used": "double", "spread": "double", "dominant_core": "long", "migrations": "long",
		"flows": "long", "rdma_qps": "long", "method": "keyword",
		"user.pct": "double", "system.pct": "double", "irq.pct": "double", "softirq.pct": "double",
		"iowait.pct": "double", "steal.pct": "double", "idle.pct": "double",
		"softirq.net_rx": "long", "softirq.net_tx": "long",
	}),
	"fleutan.qdisc": withPrefix("fleutan.qdisc.", map[string]string{
		"scope": "keyword", "device": "keyword", "device_tx_queues": "long", "netns": "long",
		"netns_name": "keyword", "kind": "keyword", "handle": "keyword",
		"parent": "keyword", "root": "boolean", "tx_queue": "long", "xps_cpus": "keyword",
		"bytes": "long", "packets": "long", "drops": "long", "overlimits": "long", "requeues": "long",
		"backlog_bytes": "long", "qlen": "long",
		"delta.bytes": "long", "delta.packets": "long", "delta.drops": "long",
		"delta.overlimits": "long", "delta.requeues": "long", "reset": "boolean",
		"rate.bps": "double", "rate.pps": "double",
		"other": "boolean", "other_flows": "long", "socket_inode": "long", "socket_netns": "long",
	}),
	"fleutan.paths": withPrefix("fleutan.paths.", pathsFields()),
	"fleutan.rdma": withPrefix("fleutan.rdma.", map[string]string{
		"scope": "keyword", "device": "keyword", "port": "long", "netdev": "keyword", "netns": "long",
		"flow_id": "keyword", "final": "boolean", "kernel_owner": "keyword",
		"qp.lqpn": "long", "qp.rqpn": "long", "qp.type": "keyword", "qp.state": "keyword",
		"qp.sq_psn": "long", "qp.rq_psn": "long", "qp.pdn": "long",
		"delta.sq_psn": "long", "delta.rq_psn": "long",
		"cm.id": "long", "cm.port_space": "keyword", "cm.state": "keyword",
		"local.ip": "ip", "local.port": "long", "remote.ip": "ip", "remote.port": "long",
		"port_state": "keyword", "counter.name": "keyword", "counter.value": "long",
		"counter.delta": "long", "counter.rate": "double",
	}),
}

// hopFields are a paths hop's fields: under hops (the path event's array
// of hop objects) and hop (a hop event's one).
var hopFields = map[string]string{
	"ttl": "long", "addrs": "ip", "sent": "long", "received": "long", "loss.pct": "double",
	"rtt_min_us": "double", "rtt_mean_us": "double", "icmp.type": "long", "icmp.code": "long",
	"tcp_flags": "long",
}

// rollupStates are the socket state names (input/flows StateName) that
// fleutan.flow.rollup.state counts flows by.
var rollupStates = []string{"established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
	"close", "close_wait", "last_ack", "listen", "closing", "new_syn_recv", "bound_inactive", "unknown"}

// withRollup adds the fields of the flows input's per-process rollups
// (fleutan.flow.scope: process) to m, with their units.
func withRollup(m map[string]string) map[string]string {
	const r = "fleutan.flow.rollup."
	add := func(k, typ, unit string) {
		m[k] = typ
		if unit != "" {
			fieldUnits[k] = unit
		}
	}
	add("fleutan.flow.scope", "keyword", "")
	for _, k := range []string{"flows", "final", "peers", "direction.inbound", "direction.outbound", "direction.listening"} {
		add(r+k, "long", UnitCount)
	}
	for _, st := range rollupStates {
		add(r+"state."+st, "long", UnitCount)
	}
	add(r+"delta.bytes_in", "long", UnitBytes)
	add(r+"delta.bytes_out", "long", UnitBytes)
	for _, k := range []string{"delta.segs_in", "delta.segs_out", "delta.retrans"} {
		add(r+k, "long", UnitSegments)
	}
	for _, k := range []string{"rtt_us.min", "rtt_us.mean", "rtt_us.max"} {
		add(r+k, "long", UnitMicros)
	}
	add(r+"cpu.pct", "double", UnitFraction)
	add(r+"cpu.spread", "double", UnitCores)
	add(r+"cpu.cores_used", "long", UnitCores)
	add(r+"cpu.dominant_core", "long", UnitID)
	add(r+"cpu.per_core.core", "long", UnitID)
	add(r+"cpu.per_core.pct", "double", UnitFraction)
	return m
}

func pathsFields() map[string]string {
	m := map[string]string{
		"type": "keyword", "peer.ip": "ip", "netns": "long", "netns_name": "keyword",
		"method": "keyword", "port": "long", "hash": "keyword", "previous_hash": "keyword",
		"changed": "boolean", "reached": "boolean", "hop_count": "long",
		"first_divergent_hop.ttl": "long", "first_divergent_hop.addrs": "ip", "first_divergent_hop.previous_addrs": "ip",
		"flows.count": "long", "flows.community_ids": "keyword",
		"processes.name": "keyword", "processes.pid": "long",
	}
	for k, v := range hopFields {
		m["hops."+k] = v
		m["hop."+k] = v
	}
	return m
}

// Units of the numeric fields, as docs/FIELDS.md lists them (a test
// keeps the two equal). "id" is a number that names something (a pid, a
// port, a core) rather than a quantity.
const (
	UnitBytes     = "bytes"
	UnitBitsPS    = "bits/s"
	UnitPacketsPS = "packets/s"
	UnitCountPS   = "count/s"
	UnitMicros    = "µs"
	UnitNanos     = "ns"
	UnitPackets   = "packets"
	UnitSegments  = "segments"
	UnitFraction  = "fraction"
	UnitCount     = "count"
	UnitCores     = "cores"
	UnitID        = "id"
)

var fieldUnits = map[string]string{
	"event.duration":                 UnitNanos,
	"fleutan.collection.duration_us": UnitMicros,
	"network.bytes":                  UnitBytes,
	"network.packets":                UnitSegments,
	"source.port":                    UnitID,
	"source.bytes":                   UnitBytes,
	"source.packets":                 UnitSegments,
	"destination.port":               UnitID,
	"destination.bytes":              UnitBytes,
	"destination.packets":            UnitSegments,
	"process.pid":                    UnitID,
	"process.parent.pid":             UnitID,

	"fleutan.flow.local.port":            UnitID,
	"fleutan.flow.remote.port":           UnitID,
	"fleutan.flow.inode":                 UnitID,
	"fleutan.flow.netns":                 UnitID,
	"fleutan.flow.tx_queue":              UnitID,
	"fleutan.flow.tcp.rtt_us":            UnitMicros,
	"fleutan.flow.tcp.rttvar_us":         UnitMicros,
	"fleutan.flow.tcp.min_rtt_us":        UnitMicros,
	"fleutan.flow.tcp.cwnd":              UnitSegments,
	"fleutan.flow.tcp.ssthresh":          UnitSegments,
	"fleutan.flow.tcp.mss":               UnitBytes,
	"fleutan.flow.tcp.bytes_acked":       UnitBytes,
	"fleutan.flow.tcp.bytes_received":    UnitBytes,
	"fleutan.flow.tcp.bytes_sent":        UnitBytes,
	"fleutan.flow.tcp.bytes_retrans":     UnitBytes,
	"fleutan.flow.tcp.segs_in":           UnitSegments,
	"fleutan.flow.tcp.segs_out":          UnitSegments,
	"fleutan.flow.tcp.total_retrans":     UnitSegments,
	"fleutan.flow.tcp.lost":              UnitSegments,
	"fleutan.flow.tcp.delivery_rate_bps": UnitBitsPS,
	"fleutan.flow.tcp.pacing_rate_bps":   UnitBitsPS,
	"fleutan.flow.tcp.notsent_bytes":     UnitBytes,
	"fleutan.flow.tcp.bdp_bytes":         UnitBytes,
	"fleutan.flow.delta.bytes_in":        UnitBytes,
	"fleutan.flow.delta.bytes_out":       UnitBytes,
	"fleutan.flow.delta.segs_in":         UnitSegments,
	"fleutan.flow.delta.segs_out":        UnitSegments,
	"fleutan.flow.delta.retrans":         UnitSegments,

	"fleutan.cpu.core":           UnitID,
	"fleutan.cpu.pct":            UnitFraction,
	"fleutan.cpu.norm.pct":       UnitFraction,
	"fleutan.cpu.share":          UnitFraction,
	"fleutan.cpu.cores_used":     UnitCores,
	"fleutan.cpu.spread":         UnitCores,
	"fleutan.cpu.dominant_core":  UnitID,
	"fleutan.cpu.migrations":     UnitCount,
	"fleutan.cpu.flows":          UnitCount,
	"fleutan.cpu.rdma_qps":       UnitCount,
	"fleutan.cpu.user.pct":       UnitFraction,
	"fleutan.cpu.system.pct":     UnitFraction,
	"fleutan.cpu.irq.pct":        UnitFraction,
	"fleutan.cpu.softirq.pct":    UnitFraction,
	"fleutan.cpu.iowait.pct":     UnitFraction,
	"fleutan.cpu.steal.pct":      UnitFraction,
	"fleutan.cpu.idle.pct":       UnitFraction,
	"fleutan.cpu.softirq.net_rx": UnitCount,
	"fleutan.cpu.softirq.net_tx": UnitCount,

	"fleutan.qdisc.device_tx_queues": UnitCount,
	"fleutan.qdisc.netns":            UnitID,
	"fleutan.qdisc.tx_queue":         UnitID,
	"fleutan.qdisc.bytes":            UnitBytes,
	"fleutan.qdisc.packets":          UnitPackets,
	"fleutan.qdisc.drops":            UnitPackets,
	"fleutan.qdisc.overlimits":       UnitCount,
	"fleutan.qdisc.requeues":         UnitPackets,
	"fleutan.qdisc.backlog_bytes":    UnitBytes,
	"fleutan.qdisc.qlen":             UnitPackets,
	"fleutan.qdisc.delta.bytes":      UnitBytes,
	"fleutan.qdisc.delta.packets":    UnitPackets,
	"fleutan.qdisc.delta.drops":      UnitPackets,
	"fleutan.qdisc.delta.overlimits": UnitCount,
	"fleutan.qdisc.delta.requeues":   UnitPackets,
	"fleutan.qdisc.rate.bps":         UnitBitsPS,
	"fleutan.qdisc.rate.pps":         UnitPacketsPS,
	"fleutan.qdisc.other_flows":      UnitCount,
	"fleutan.qdisc.socket_inode":     UnitID,
	"fleutan.qdisc.socket_netns":     UnitID,

	"fleutan.paths.netns":                   UnitID,
	"fleutan.paths.port":                    UnitID,
	"fleutan.paths.hop_count":               UnitCount,
	"fleutan.paths.first_divergent_hop.ttl": UnitCount,
	"fleutan.paths.flows.count":             UnitCount,
	"fleutan.paths.processes.pid":           UnitID,
	"fleutan.paths.hops.ttl":                UnitCount,
	"fleutan.paths.hops.sent":               UnitPackets,
	"fleutan.paths.hops.received":           UnitPackets,
	"fleutan.paths.hops.loss.pct":           UnitFraction,
	"fleutan.paths.hops.rtt_min_us":         UnitMicros,
	"fleutan.paths.hops.rtt_mean_us":        UnitMicros,
	"fleutan.paths.hops.icmp.type":          UnitID,
	"fleutan.paths.hops.icmp.code":          UnitID,
	"fleutan.paths.hops.tcp_flags":          UnitID,
	"fleutan.paths.hop.ttl":                 UnitCount,
	"fleutan.paths.hop.sent":                UnitPackets,
	"fleutan.paths.hop.received":            UnitPackets,
	"fleutan.paths.hop.loss.pct":            UnitFraction,
	"fleutan.paths.hop.rtt_min_us":          UnitMicros,
	"fleutan.paths.hop.rtt_mean_us":         UnitMicros,
	"fleutan.paths.hop.icmp.type":           UnitID,
	"fleutan.paths.hop.icmp.code":           UnitID,
	"fleutan.paths.hop.tcp_flags":           UnitID,

	"fleutan.rdma.port":          UnitID,
	"fleutan.rdma.netns":         UnitID,
	"fleutan.rdma.qp.lqpn":       UnitID,
	"fleutan.rdma.qp.rqpn":       UnitID,
	"fleutan.rdma.qp.sq_psn":     UnitID,
	"fleutan.rdma.qp.rq_psn":     UnitID,
	"fleutan.rdma.qp.pdn":        UnitID,
	"fleutan.rdma.delta.sq_psn":  UnitPackets,
	"fleutan.rdma.delta.rq_psn":  UnitPackets,
	"fleutan.rdma.cm.id":         UnitID,
	"fleutan.rdma.local.port":    UnitID,
	"fleutan.rdma.remote.port":   UnitID,
	"fleutan.rdma.counter.value": UnitCount,
	"fleutan.rdma.counter.delta": UnitCount,
	"fleutan.rdma.counter.rate":  UnitCountPS,
}

// esUnit is a unit as Elasticsearch's field meta names it ("percent"
// means a fraction, 1 = 100%), for those it knows; Kibana formats such
// fields by it.
func esUnit(u string) string {
	switch u {
	case UnitBytes:
		return "byte"
	case UnitFraction:
		return "percent"
	case UnitMicros:
		return "micros"
	case UnitNanos:
		return "nanos"
	}
	return ""
}

// Field is one mapped field: its dotted name, mapping type and unit ("" for
// fields that are not numbers).
type Field struct {
	Name, Type, Unit string
	// Dataset is the dataset whose component template maps it; "" for the
	// common fields.
	Dataset string
}

// Fields lists every field the templates map, common fields first, each
// group sorted by name.
func Fields() []Field {
	var out []Field
	add := func(ds string, m map[string]string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, Field{Name: k, Type: m[k], Unit: fieldUnits[k], Dataset: ds})
		}
	}
	add("", commonFields)
	for _, ds := range AllDatasets() {
		add(ds, datasetFields[ds])
	}
	return out
}

func withPrefix(prefix string, m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[prefix+k] = v
	}
	return out
}

// properties nests dotted field names into a mapping's properties; ts
// adds the time series parameters, which only a server with time series
// data streams knows (OpenSearch refuses them as unknown parameters).
func properties(fields map[string]string, ts bool) map[string]any {
	root := map[string]any{}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.Split(k, ".")
		cur := root
		for _, p := range parts[:len(parts)-1] {
			obj, ok := cur[p].(map[string]any)
			if !ok {
				obj = map[string]any{"properties": map[string]any{}}
				cur[p] = obj
			}
			cur = obj["properties"].(map[string]any)
		}
		leaf := map[string]any{"type": fields[k]}
		if fields[k] == "keyword" && !(ts && tsDimensions[k]) {
			leaf["ignore_above"] = 1024
		}
		switch {
		case !ts:
		case tsDimensions[k]:
			leaf["time_series_dimension"] = true
		case isGauge(k, fields[k]):
			leaf["time_series_metric"] = "gauge"
		}
		if isMeasurement(k, fields[k]) {
			// Panels aggregate these from doc values, and a range query
			// on one still works (from doc values, more slowly); the
			// points index of some 30 numbers per flow event was 7% of a
			// standard stream's bytes and 10-13% of a time series one's
			// (fleet profile, TestFleetProfileShort with
			// FLEUTANBEAT_FLEET_VARIANT=numeric). The keyword fields no
			// panel or query uses (agent.*, host.os.*, process.args, ...)
			// saved 1% with index: false, within the runs' noise: one
			// value per agent costs next to nothing in either structure.
			leaf["index"] = false
		}
		if u := esUnit(fieldUnits[k]); u != "" {
			leaf["meta"] = map[string]any{"unit": u}
		}
		cur[parts[len(parts)-1]] = leaf
	}
	return root
}

// isGauge tells the numbers that are a measurement of the period (a
// delta, a rate, a fraction, a current value) from identifiers and from
// counters since a socket or qdisc began: only the former are marked
// time_series_metric: gauge. A cumulative counter marked counter would
// refuse the sum and average aggregations the dashboards may run on it.
func isGauge(name, typ string) bool {
	if typ != "long" && typ != "double" {
		return false
	}
	switch fieldUnits[name] {
	case UnitID, "":
		return false
	}
	if cumulative[name] {
		return false
	}
	return true
}

// isMeasurement tells numbers that measure something (a unit other than
// id) from identifiers (ports, pids, cores, inodes), which are filtered
// on.
func isMeasurement(name, typ string) bool {
	if typ != "long" && typ != "double" {
		return false
	}
	u := fieldUnits[name]
	return u != "" && u != UnitID && !tsDimensions[name]
}

// cumulative are the counters since a socket, qdisc or device began.
var cumulative = map[string]bool{
	"network.bytes": true, "network.packets": true,
	"source.bytes": true, "source.packets": true, "destination.bytes": true, "destination.packets": true,
	"fleutan.flow.tcp.bytes_acked": true, "fleutan.flow.tcp.bytes_received": true,
	"fleutan.flow.tcp.bytes_sent": true, "fleutan.flow.tcp.bytes_retrans": true,
	"fleutan.flow.tcp.segs_in": true, "fleutan.flow.tcp.segs_out": true,
	"fleutan.flow.tcp.total_retrans": true, "fleutan.flow.tcp.lost": true,
	"fleutan.qdisc.bytes": true, "fleutan.qdisc.packets": true, "fleutan.qdisc.drops": true,
	"fleutan.qdisc.overlimits": true, "fleutan.qdisc.requeues": true,
	"fleutan.rdma.qp.sq_psn": true, "fleutan.rdma.qp.rq_psn": true, "fleutan.rdma.counter.value": true,
}

// dynamicTemplates map fields nobody declared: strings as keyword (not
// text plus keyword, these are identifiers), integers long, fractions
// double rather than the default float, which loses precision on counters.
var dynamicTemplates = []any{
	map[string]any{"strings_as_keyword": map[string]any{
		"match_mapping_type": "string",
		"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
	}},
	map[string]any{"longs": map[string]any{
		"match_mapping_type": "long", "mapping": map[string]any{"type": "long"},
	}},
	map[string]any{"doubles": map[string]any{
		"match_mapping_type": "double", "mapping": map[string]any{"type": "double"},
	}},
}

func componentName(dataset string) string { return dataset + "@mappings" }

// IndexTemplateName names the index template of a dataset.
func IndexTemplateName(cfg Config, dataset string) string {
	if cfg.Mode == ModeIndex {
		return "fleutan-index-" + dataset
	}
	return "metrics-" + dataset
}

// Templates returns the component templates (common fields, then one per
// dataset) followed by one composable index template per dataset, for the
// configured mode. In index mode an index pattern without
// %{[event.dataset]} gives a single index template for all datasets, as
// two templates with the same patterns and priority are refused.
func Templates(cfg Config) ([]Template, error) {
	t := cfg.Template
	if t.Priority == 0 && t.Shards == 0 {
		t = DefaultTemplateConfig()
	}
	ts := cfg.engine().TimeSeries
	out := []Template{{
		Kind: KindComponent, Name: commonComponent,
		Body: map[string]any{
			"template": map[string]any{
				"settings": map[string]any{"index": map[string]any{
					"number_of_shards": t.Shards, "number_of_replicas": t.Replicas,
				}},
				"mappings": map[string]any{
					"dynamic":           true,
					"date_detection":    false,
					"dynamic_templates": dynamicTemplates,
					"properties":        properties(commonFields, ts),
				},
			},
			"_meta": map[string]any{"managed_by": "fleutanbeat"},
		},
	}}
	for _, ds := range AllDatasets() {
		out = append(out, Template{
			Kind: KindComponent, Name: componentName(ds),
			Body: map[string]any{
				"template": map[string]any{"mappings": map[string]any{"properties": properties(datasetFields[ds], ts)}},
				"_meta":    map[string]any{"managed_by": "fleutanbeat", "dataset": ds},
			},
		})
	}
	index := func(name string, patterns []string, composed []string, ds string) Template {
		body := map[string]any{
			"index_patterns": patterns,
			"composed_of":    composed,
			"priority":       t.Priority,
			"_meta":          map[string]any{"managed_by": "fleutanbeat", "dataset": ds},
		}
		if cfg.Mode != ModeIndex {
			body["data_stream"] = map[string]any{}
			if ts && t.IndexMode != IndexModeStandard && slices.Contains(TimeSeriesDatasets, ds) {
				body["template"] = map[string]any{"settings": map[string]any{"index": map[string]any{
					"mode": IndexModeTimeSeries, "routing_path": tsRoutingPath,
				}}}
			}
		}
		return Template{Kind: KindIndex, Name: name, Body: body}
	}
	if cfg.Mode == ModeIndex {
		p, err := parsePattern(cfg.Index)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: index: %w", err)
		}
		if !p.hasField("event.dataset") {
			composed := []string{commonComponent}
			for _, ds := range AllDatasets() {
				composed = append(composed, componentName(ds))
			}
			return append(out, index("fleutan-index", []string{p.wildcard("")}, composed, "")), nil
		}
		for _, ds := range AllDatasets() {
			out = append(out, index(IndexTemplateName(cfg, ds), []string{p.wildcard(ds)}, []string{commonComponent, componentName(ds)}, ds))
		}
		return out, nil
	}
	for _, ds := range AllDatasets() {
		out = append(out, index(IndexTemplateName(cfg, ds), []string{"metrics-" + ds + "-*"}, []string{commonComponent, componentName(ds)}, ds))
	}
	return out, nil
}

// deadLetterTemplate maps the dead-letter index: the refused document is
// kept as an unindexed string, since it may be what broke the mapping.
func deadLetterTemplate(cfg Config) (Template, bool) {
	if cfg.NonIndexablePolicy.Action != PolicyDeadLetterIndex {
		return Template{}, false
	}
	t := cfg.Template
	if t.Priority == 0 && t.Shards == 0 {
		t = DefaultTemplateConfig()
	}
	return Template{Kind: KindIndex, Name: "fleutan-dead-letter", Body: map[string]any{
		"index_patterns": []string{cfg.NonIndexablePolicy.Index},
		"priority":       t.Priority + 1,
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{"number_of_shards": 1, "number_of_replicas": t.Replicas}},
			"mappings": map[string]any{
				"dynamic": false,
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"message":    map[string]any{"type": "keyword", "index": false, "doc_values": false},
					"event":      map[string]any{"properties": map[string]any{"id": map[string]any{"type": "keyword"}}},
					"error":      map[string]any{"properties": map[string]any{"type": map[string]any{"type": "keyword"}, "message": map[string]any{"type": "keyword", "ignore_above": 4096}, "status": map[string]any{"type": "long"}}},
				},
			},
		},
		"_meta": map[string]any{"managed_by": "fleutanbeat"},
	}}, true
}

func allTemplates(cfg Config) ([]Template, error) {
	ts, err := Templates(cfg)
	if err != nil {
		return nil, err
	}
	if dl, ok := deadLetterTemplate(cfg); ok {
		ts = append(ts, dl)
	}
	return ts, nil
}

// ExportTemplates writes every template as `PUT path` followed by its JSON
// body (Kibana Dev Tools console format), for `export template`.
func ExportTemplates(w io.Writer, cfg Config) error {
	ts, err := allTemplates(cfg)
	if err != nil {
		return err
	}
	for i, t := range ts {
		b, err := json.MarshalIndent(t.Body, "", "  ")
		if err != nil {
			return fmt.Errorf("elasticsearch: template %s: %w", t.Name, err)
		}
		sep := "\n"
		if i == 0 {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "%sPUT %s\n%s\n", sep, t.Path(), b); err != nil {
			return fmt.Errorf("elasticsearch: export template: %w", err)
		}
	}
	return nil
}

// Setup installs the templates (setup --index-management). PUTs overwrite,
// so running it again is harmless.
func Setup(ctx context.Context, cfg Config, s output.Settings) error {
	client, err := newClient(cfg, s.Beat)
	if err != nil {
		return err
	}
	return installTemplates(ctx, client, cfg)
}

// EnsureTemplates is what the agent runs at start when
// setup.template.enabled is true; the output also runs it before its first
// bulk request when Config.Template.Enabled is set.
func EnsureTemplates(ctx context.Context, cfg Config, s output.Settings) error {
	if !cfg.Template.Enabled {
		return nil
	}
	return Setup(ctx, cfg, s)
}

func installTemplates(ctx context.Context, client Transport, cfg Config) error {
	ts, err := allTemplates(cfg)
	if err != nil {
		return err
	}
	for _, t := range ts {
		body, err := json.Marshal(t.Body)
		if err != nil {
			return fmt.Errorf("elasticsearch: template %s: %w", t.Name, err)
		}
		if err := put(ctx, client, cfg, t.Path(), body); err != nil {
			return fmt.Errorf("template %s: %w", t.Name, err)
		}
	}
	return nil
}

func put(ctx context.Context, client Transport, cfg Config, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Perform(req)
	if err != nil {
		return describeTransportError(cfg.engine(), err)
	}
	defer res.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return statusError(cfg.engine(), "PUT "+path, res.StatusCode, reply)
	}
	return nil
}
