package queryapi

import (
	"net/http"
	"time"

	"github.com/fleutan/fleutanbeat/input/qdisc"
)

// qdiscDoc is the answer of GET /api/v1/qdisc.
type qdiscDoc struct {
	// Time is when the latest collection started; PreviousTime when the
	// one before it did (null after the first collection).
	Time         time.Time  `json:"time"`
	PreviousTime *time.Time `json:"previous_time"`
	// Namespaces are the network namespaces the collection visited.
	Namespaces []qdisc.Namespace `json:"namespaces"`
	// Qdiscs are every qdisc and class, device by device, with their
	// change since their previous reading.
	Qdiscs []qdiscReport `json:"qdiscs"`
	// Queues are the TX queues of multiqueue devices (each child of mq or
	// mqprio) and any other queue that flows were seen on, each with its
	// top flows over the period (eBPF flow attribution; empty without).
	Queues []queueReport `json:"queues"`
	// Evictions counts the flow entries the kernel evicted from the full
	// eBPF map during the period: their traffic is missing from Queues.
	Evictions int64 `json:"ebpf_evictions"`
}

// qdiscReport is a qdisc or class of the snapshot and its change.
type qdiscReport struct {
	Qdisc *qdisc.Qdisc `json:"qdisc"`
	// Delta is the change since its previous reading, null where
	// qdisc.Diff gives none (the first collection of its namespace).
	Delta *qdiscChange `json:"delta"`
}

// qdiscChange is qdisc.QdiscDelta without its OK flag: a report has a
// change or null.
type qdiscChange struct {
	qdisc.Counters
	// Reset: the counters went backwards (the qdisc was deleted and added
	// again with the same handle); the counters are its new cumulative
	// value.
	Reset bool `json:"reset"`
	// Elapsed is the time the change covers, in nanoseconds.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// queueReport is one TX queue of a device.
type queueReport struct {
	Device  *qdisc.Device `json:"device"`
	TxQueue int           `json:"tx_queue"`
	// Qdisc is the qdisc that feeds the queue (a child of mq or mqprio)
	// and Delta its change, both null for a queue without one.
	Qdisc *qdisc.Qdisc `json:"qdisc"`
	Delta *qdiscChange `json:"delta"`
	// Flows are the queue's top flows over the period as the collector
	// lists them, then one Other flow for the rest.
	Flows []qdisc.QueueFlow `json:"flows"`
}

func (s *server) qdisc(w http.ResponseWriter, _ *http.Request, _ query) {
	prevC, curC, aerr := s.collection("qdisc")
	if aerr != nil {
		aerr.write(w)
		return
	}
	cur, _ := curC.Snapshot.(qdisc.Snapshot)
	prev, _ := prevC.Snapshot.(qdisc.Snapshot)
	doc := qdiscDoc{
		Time:       cur.Time,
		Namespaces: cur.Namespaces,
		Qdiscs:     make([]qdiscReport, len(cur.Qdiscs)),
		Queues:     []queueReport{},
		Evictions:  cur.Evictions,
	}
	if doc.Namespaces == nil {
		doc.Namespaces = []qdisc.Namespace{}
	}
	if !prev.Time.IsZero() {
		doc.PreviousTime = &prev.Time
	}
	deltas := qdisc.Diff(prev, cur)
	type queueKey struct {
		netns uint64
		index int32
		queue int
	}
	queues := map[queueKey]int{} // index in doc.Queues
	for i := range cur.Qdiscs {
		q := &cur.Qdiscs[i]
		r := qdiscReport{Qdisc: q}
		if d := deltas[i]; d.OK {
			r.Delta = &qdiscChange{Counters: d.Delta, Reset: d.Reset, Elapsed: d.Elapsed}
		}
		doc.Qdiscs[i] = r
		if q.Scope == qdisc.ScopeQdisc && q.TxQueue >= 0 && q.Device != nil {
			k := queueKey{q.Device.Netns, q.Device.Index, q.TxQueue}
			if _, dup := queues[k]; !dup {
				queues[k] = len(doc.Queues)
				doc.Queues = append(doc.Queues, queueReport{Device: q.Device, TxQueue: q.TxQueue, Qdisc: q, Delta: r.Delta, Flows: []qdisc.QueueFlow{}})
			}
		}
	}
	for _, f := range cur.QueueFlows {
		if f.Device == nil {
			continue
		}
		k := queueKey{f.Device.Netns, f.Device.Index, f.TxQueue}
		j, ok := queues[k]
		if !ok {
			j = len(doc.Queues)
			queues[k] = j
			doc.Queues = append(doc.Queues, queueReport{Device: f.Device, TxQueue: f.TxQueue, Flows: []qdisc.QueueFlow{}})
		}
		doc.Queues[j].Flows = append(doc.Queues[j].Flows, f)
	}
	s.writeJSON(w, doc)
}
