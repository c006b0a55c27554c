package queryapi

import (
	"net/http"
	"time"

	"github.com/fleutan/fleutanbeat/input/rdma"
)

// rdmaDoc is the answer of GET /api/v1/rdma.
type rdmaDoc struct {
	// Time is when the latest collection was taken; PreviousTime when the
	// one before it was (null after the first collection).
	Time         time.Time  `json:"time"`
	PreviousTime *time.Time `json:"previous_time"`
	// Devices are the RDMA devices with their ports; empty on a host
	// without RDMA.
	Devices []rdma.Device `json:"devices"`
	// QueuePairs are the queue pairs of the latest collection, then those
	// of the collection before that are gone (final).
	QueuePairs []qpReport `json:"queue_pairs"`
	// Ports are every port's counter changes over the period; empty after
	// the first collection.
	Ports []portReport `json:"ports"`
	// CMIDs are the RDMA CM identifiers, listeners included.
	CMIDs []rdma.CMID `json:"cm_ids"`
}

// qpReport is one queue pair and its PSN advance.
type qpReport struct {
	QP *rdma.QP `json:"qp"`
	// Final: the queue pair is gone; QP is its last state.
	Final bool `json:"final"`
	// Delta is null at the first collection, for a queue pair new in the
	// period and for a final one: no period to measure.
	Delta *qpChange `json:"delta"`
}

// qpChange is rdma.QPDelta's PSN advance over a period.
type qpChange struct {
	// SQPSN and RQPSN are how far the send and receive PSNs moved
	// (modulo 2^24): packets sent, and expected and received.
	SQPSN   uint32        `json:"sq_psn"`
	RQPSN   uint32        `json:"rq_psn"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// portReport is rdma.PortDelta: a port's counter changes over the period.
type portReport struct {
	Device      string     `json:"device"`
	DeviceIndex uint32     `json:"device_index"`
	Port        *rdma.Port `json:"port"`
	// Counters are the increases by counter name (a port or counter that
	// appeared in the period counts from its first reading: 0), Rates the
	// same per second; Reset names the counters that went down and count
	// from 0 again.
	Counters map[string]uint64  `json:"counters"`
	Rates    map[string]float64 `json:"rates"`
	Reset    []string           `json:"reset"`
	Elapsed  time.Duration      `json:"elapsed_ns"`
}

func (s *server) rdma(w http.ResponseWriter, _ *http.Request, _ query) {
	prevC, curC, aerr := s.collection("rdma")
	if aerr != nil {
		aerr.write(w)
		return
	}
	cur, _ := curC.Snapshot.(rdma.Snapshot)
	prev, _ := prevC.Snapshot.(rdma.Snapshot)
	doc := rdmaDoc{Time: cur.Time, Devices: cur.Devices, QueuePairs: []qpReport{}, Ports: []portReport{}, CMIDs: cur.CMIDs}
	if doc.Devices == nil {
		doc.Devices = []rdma.Device{}
	}
	if doc.CMIDs == nil {
		doc.CMIDs = []rdma.CMID{}
	}
	first := prev.Time.IsZero()
	if !first {
		doc.PreviousTime = &prev.Time
	}
	d := rdma.Diff(prev, cur)
	for i := range d.QPs {
		qd := &d.QPs[i]
		r := qpReport{QP: &qd.QP, Final: qd.Final}
		if !first && !qd.New && !qd.Final {
			r.Delta = &qpChange{SQPSN: qd.SQPSN, RQPSN: qd.RQPSN, Elapsed: d.Period}
		}
		doc.QueuePairs = append(doc.QueuePairs, r)
	}
	if !first {
		for i := range d.Ports {
			pd := &d.Ports[i]
			reset := pd.Reset
			if reset == nil {
				reset = []string{}
			}
			doc.Ports = append(doc.Ports, portReport{Device: pd.Device, DeviceIndex: pd.DeviceIndex, Port: &pd.Port,
				Counters: pd.Counters, Rates: pd.Rates, Reset: reset, Elapsed: d.Period})
		}
	}
	s.writeJSON(w, doc)
}
