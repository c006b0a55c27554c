package qdiscinput

import (
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/internal/ecsfields"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.qdisc"

// eventMeta is the event object; covers is the time the event covers
// (ECS event.duration).
func eventMeta(covers time.Duration) pipeline.M {
	return pipeline.M{
		"dataset":  Dataset,
		"module":   "fleutan",
		"kind":     "metric",
		"duration": covers.Nanoseconds(),
	}
}

// collectionFields is fleutan.collection: how long the collection took.
func collectionFields(t input.Times) pipeline.M {
	return pipeline.M{"duration_us": t.CollectionMicros()}
}

// deviceFields are the fleutan.qdisc fields naming the device.
func deviceFields(d *qdisc.Device, txQueue int) pipeline.M {
	q := pipeline.M{
		"device":           d.Name,
		"device_tx_queues": uint64(d.TxQueues),
		"netns":            d.Netns,
	}
	if d.NetnsName != "" {
		q["netns_name"] = d.NetnsName
	}
	if txQueue >= 0 {
		q["tx_queue"] = txQueue
		if txQueue < len(d.XPS) && d.XPS[txQueue] != "" {
			q["xps_cpus"] = d.XPS[txQueue]
		}
	}
	return q
}

// Event converts s, with d its delta from qdisc.Diff, into a
// fleutan.qdisc event of scope qdisc or class for the collection that
// started at ts. Its event.duration is the time its deltas cover
// (Elapsed), or the window of the collection when it has none.
func Event(s *qdisc.Qdisc, d qdisc.QdiscDelta, ts time.Time, t input.Times) pipeline.Event {
	covers := t.Window
	if d.OK && d.Elapsed > 0 {
		covers = d.Elapsed
	}
	q := deviceFields(s.Device, s.TxQueue)
	q["scope"] = string(s.Scope)
	q["kind"] = s.Kind
	q["handle"] = qdisc.FormatHandle(s.Handle)
	q["parent"] = qdisc.FormatHandle(s.Parent)
	q["root"] = s.Root()
	q["bytes"] = s.Bytes
	q["packets"] = s.Packets
	q["drops"] = s.Drops
	q["overlimits"] = s.Overlimits
	q["requeues"] = s.Requeues
	q["backlog_bytes"] = uint64(s.Backlog)
	q["qlen"] = uint64(s.Qlen)
	if d.OK {
		q["delta"] = pipeline.M{
			"bytes":      d.Delta.Bytes,
			"packets":    d.Delta.Packets,
			"drops":      d.Delta.Drops,
			"overlimits": d.Delta.Overlimits,
			"requeues":   d.Delta.Requeues,
		}
		q["reset"] = d.Reset
		if sec := d.Elapsed.Seconds(); sec > 0 {
			q["rate"] = pipeline.M{
				"bps": float64(d.Delta.Bytes) * 8 / sec,
				"pps": float64(d.Delta.Packets) / sec,
			}
		}
	}
	if m, ok := kindFields(&s.KindStats); ok && s.Kind != "" {
		q[s.Kind] = m
	}
	return pipeline.Event{
		Timestamp: ts,
		Fields: pipeline.M{
			"event":   eventMeta(covers),
			"fleutan": pipeline.M{"qdisc": q, "collection": collectionFields(t)},
		},
		Series: s.Series(),
	}
}

// FlowEvent converts s into a fleutan.qdisc event of scope flow.
func FlowEvent(s *qdisc.QueueFlow, ts time.Time, t input.Times) pipeline.Event {
	q := deviceFields(s.Device, s.TxQueue)
	q["scope"] = string(qdisc.ScopeFlow)
	q["delta"] = pipeline.M{"bytes": s.Bytes, "packets": s.Packets}
	fields := pipeline.M{
		"event":   eventMeta(t.Window),
		"fleutan": pipeline.M{"qdisc": q, "collection": collectionFields(t)},
	}
	series := devKeySeries(s.Device) + "/" + strconv.Itoa(s.TxQueue) + "/flow/"
	if s.Other {
		q["other"] = true
		q["other_flows"] = s.OtherFlows
		return pipeline.Event{Timestamp: ts, Fields: fields, Series: series + "other"}
	}
	q["other"] = false
	if s.Inode != 0 {
		q["socket_inode"] = uint64(s.Inode)
	}
	if s.SockNetns != 0 {
		q["socket_netns"] = s.SockNetns
	}
	src, dst := s.Local, s.Remote
	direction := ecsfields.Direction(flows.Listening)
	if f := s.Flow; f != nil {
		direction = ecsfields.Direction(f.Direction)
		if f.Direction == flows.Inbound {
			src, dst = s.Remote, s.Local
		}
	}
	network := pipeline.M{
		"transport":   flows.TransportName(s.Protocol),
		"iana_number": strconv.Itoa(int(s.Protocol)),
		"direction":   direction,
		"type":        "ipv4",
	}
	if !s.Local.Addr().Is4() {
		network["type"] = "ipv6"
	}
	fields["network"] = network
	fields["source"] = pipeline.M{"ip": src.Addr().String(), "port": int(src.Port())}
	if dst.Port() != 0 {
		fields["destination"] = pipeline.M{"ip": dst.Addr().String(), "port": int(dst.Port())}
		network["community_id"] = communityid.V1(0, s.Protocol, src, dst)
	}
	if s.Flow != nil && s.Flow.Process != nil {
		fields["process"], fields["user"] = ecsfields.ProcessObjects(pipeline.NewBuilder(3, 8), s.Flow.Process)
	}
	b := []byte(series)
	b = append(b, flows.TransportName(s.Protocol)...)
	b = append(b, '/')
	b = s.Local.AppendTo(b)
	b = append(b, '/')
	b = s.Remote.AppendTo(b)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(s.Inode), 10)
	// The socket's namespace too: sockets without an inode (the kernel's
	// own, such as each namespace's ICMPv6 socket) with the same addresses
	// in two namespaces can feed one queue, and must not share an id.
	b = append(b, '/')
	b = strconv.AppendUint(b, s.SockNetns, 10)
	return pipeline.Event{Timestamp: ts, Fields: fields, Series: string(b)}
}

func devKeySeries(d *qdisc.Device) string {
	return strconv.FormatUint(d.Netns, 10) + "/" + d.Name
}
