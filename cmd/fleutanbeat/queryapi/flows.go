package queryapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"iter"
	"net/http"
	"net/netip"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
)

// flowsDoc is the answer of GET /api/v1/flows.
type flowsDoc struct {
	// Time is when the latest collection started; PreviousTime when the
	// one before it did, the start of the period the deltas cover (null
	// after the first collection).
	Time         time.Time  `json:"time"`
	PreviousTime *time.Time `json:"previous_time"`
	// Namespaces are the network namespaces the collection visited.
	Namespaces []flows.Namespace `json:"namespaces"`
	// Unattributed counts the collection's live sockets without a
	// process, by reason (before the query's filters).
	Unattributed flows.Unattributed `json:"unattributed"`
	// Flows are the collection's flows that pass the filters: the live
	// ones, then the final reports of flows that ended in the period.
	Flows []flowItem `json:"flows"`
}

// flowItem is a flow of the snapshot and its change over the period.
type flowItem struct {
	Flow *flows.Flow `json:"flow"`
	// Delta is what the flow did over the period, null where flows.Diff
	// gives none (a flow of the namespace's first collection, a listening
	// or UDP socket, a final report without close-time counters).
	Delta *flows.Delta `json:"delta"`
}

// latestFlows returns the latest flows collection, its document without
// flows yet, and the deltas of its flows.
func (s *server) latestFlows() (doc flowsDoc, cur flows.Snapshot, deltas []flows.FlowDelta, _ *apiError) {
	prevC, curC, aerr := s.collection("flows")
	if aerr != nil {
		return doc, cur, nil, aerr
	}
	cur, _ = curC.Snapshot.(flows.Snapshot)
	prev, _ := prevC.Snapshot.(flows.Snapshot)
	doc = flowsDoc{
		Time:         cur.Time,
		Namespaces:   cur.Namespaces,
		Unattributed: cur.Unattributed,
		Flows:        []flowItem{},
	}
	if doc.Namespaces == nil {
		doc.Namespaces = []flows.Namespace{}
	}
	if !prev.Time.IsZero() {
		doc.PreviousTime = &prev.Time
	}
	return doc, cur, flows.Diff(prev, cur), nil
}

func (s *server) flows(w http.ResponseWriter, _ *http.Request, q query) {
	doc, cur, deltas, aerr := s.latestFlows()
	if aerr != nil {
		aerr.write(w)
		return
	}
	s.writeFlows(w, doc, func(yield func(flowItem) bool) {
		for i := range cur.Flows {
			if f := &cur.Flows[i]; q.matchFlow(f) && !yield(item(f, deltas[i])) {
				return
			}
		}
	})
}

// writeFlows writes doc with the flows items yields, encoding one flow at
// a time: a collection of 36,000 flows is some 20 MB of JSON, which is
// then never held whole (BenchmarkFlowsEndpoint). doc.Flows must be
// empty; it is the document's last member.
func (s *server) writeFlows(w http.ResponseWriter, doc flowsDoc, items iter.Seq[flowItem]) {
	head, err := json.Marshal(doc)
	const tail = `[]}`
	if err != nil || !bytes.HasSuffix(head, []byte(`"flows":`+tail)) {
		// Only a change of flowsDoc itself gets here: a bug.
		s.log.Error("query API: encoding the flows document", "error", err)
		writeError(w, http.StatusInternalServerError, "encoding the flows document: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:len(head)-len(tail)])
	bw.WriteByte('[')
	enc := json.NewEncoder(bw)
	first := true
	for it := range items {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		// Encode ends each value with a newline, which JSON allows
		// between members.
		if err := enc.Encode(it); err != nil {
			// The status is sent: the client sees a truncated document
			// (or has gone away, the usual cause).
			s.log.Debug("query API: flows answer cut short", "error", err)
			return
		}
	}
	bw.WriteString("]}\n")
	_ = bw.Flush()
}

func item(f *flows.Flow, d flows.FlowDelta) flowItem {
	it := flowItem{Flow: f}
	if d.OK {
		it.Delta = &d.Delta
	}
	return it
}

// matchFlow applies the query's filters; every given filter must match.
func (q query) matchFlow(f *flows.Flow) bool {
	if q.pid != nil && (f.Process == nil || f.Process.PID != *q.pid) {
		return false
	}
	if q.process != nil && (f.Process == nil || f.Process.Name != *q.process) {
		return false
	}
	remote, hasPeer := peerOf(f)
	if q.port != nil && f.Local.Port() != *q.port && !(hasPeer && f.Remote.Port() == *q.port) {
		return false
	}
	if q.peer != nil && !(hasPeer && q.peer.Contains(remote)) {
		return false
	}
	return true
}

// peerOf is a flow's remote address as the filters see it: IPv4-mapped
// addresses of dual-stack sockets as IPv4; none for a listening or
// unconnected socket (the kernel reports its remote end as the
// unspecified address and port 0).
func peerOf(f *flows.Flow) (netip.Addr, bool) {
	a := f.Remote.Addr().Unmap()
	if f.Direction == flows.Listening || !a.IsValid() || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}
