package qdisc

import (
	"time"

	"github.com/fleutan/fleutanbeat/input"
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
func deviceFields(d *Device, txQueue int) pipeline.M {
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

// Event converts s into a fleutan.qdisc event of scope qdisc or class for
// the collection that started at ts. Its event.duration is the time its
// deltas cover (Elapsed), or the window of the collection when it has none.
func (s *Sample) Event(ts time.Time, t input.Times) pipeline.Event {
	covers := t.Window
	if s.HasDelta && s.Elapsed > 0 {
		covers = s.Elapsed
	}
	q := deviceFields(s.Device, s.TxQueue)
	q["scope"] = string(s.Scope)
	q["kind"] = s.Kind
	q["handle"] = FormatHandle(s.Handle)
	q["parent"] = FormatHandle(s.Parent)
	q["root"] = s.Root()
	q["bytes"] = s.Bytes
	q["packets"] = s.Packets
	q["drops"] = s.Drops
	q["overlimits"] = s.Overlimits
	q["requeues"] = s.Requeues
	q["backlog_bytes"] = uint64(s.Backlog)
	q["qlen"] = uint64(s.Qlen)
	if s.HasDelta {
		q["delta"] = pipeline.M{
			"bytes":      s.Delta.Bytes,
			"packets":    s.Delta.Packets,
			"drops":      s.Delta.Drops,
			"overlimits": s.Delta.Overlimits,
			"requeues":   s.Delta.Requeues,
		}
		q["reset"] = s.Reset
		if sec := s.Elapsed.Seconds(); sec > 0 {
			q["rate"] = pipeline.M{
				"bps": float64(s.Delta.Bytes) * 8 / sec,
				"pps": float64(s.Delta.Packets) / sec,
			}
		}
	}
	if s.Specific != nil && s.Kind != "" {
		q[s.Kind] = s.Specific.Fields()
	}
	return pipeline.Event{
		Timestamp: ts,
		Fields: pipeline.M{
			"event":   eventMeta(covers),
			"fleutan": pipeline.M{"qdisc": q, "collection": collectionFields(t)},
		},
		Series: s.key().series(),
	}
}
