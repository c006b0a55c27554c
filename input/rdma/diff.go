package rdma

import (
	"slices"
	"time"
)

// Delta is what changed between two snapshots.
type Delta struct {
	Time time.Time `json:"time"`
	// Period is the time between the snapshots; 0 for the first.
	Period time.Duration `json:"period_ns"`
	// QPs are the queue pairs of cur, then those of prev that are gone
	// (Final).
	QPs   []QPDelta   `json:"qps"`
	Ports []PortDelta `json:"ports"`
}

// QPDelta is one queue pair over the period.
type QPDelta struct {
	QP QP `json:"qp"`
	// New: prev did not have it (or had another QP under its number).
	New bool `json:"new,omitempty"`
	// Final: the queue pair is gone; QP is its last state.
	Final bool `json:"final,omitempty"`
	// SQPSN and RQPSN are how far the send and receive PSNs moved, modulo
	// 2^24 (PSNs are 24 bits): packets sent and expected-and-received
	// over the period. 0 for a new or a final queue pair.
	SQPSN uint32 `json:"sq_psn"`
	RQPSN uint32 `json:"rq_psn"`
}

// PortDelta is one port's counters over the period.
type PortDelta struct {
	Device      string `json:"device"`
	DeviceIndex uint32 `json:"device_index"`
	Port        Port   `json:"port"`
	// Counters are the increases per counter name; Rates the same per
	// second. A counter that went down (a reset, a re-created device)
	// counts from 0 and is named in Reset.
	Counters map[string]uint64  `json:"counters"`
	Rates    map[string]float64 `json:"rates"`
	Reset    []string           `json:"reset,omitempty"`
}

const psnMask = 1<<24 - 1

// sameQP: cur is the queue pair prev was, not a new one that got its
// number.
func sameQP(prev, cur *QP) bool {
	return prev.PID == cur.PID && prev.KernelOwner == cur.KernelOwner && prev.Type == cur.Type
}

// Diff computes the changes from prev to cur. It is pure: neither snapshot
// is modified and the result shares their queue pairs' pointers.
func Diff(prev, cur Snapshot) Delta {
	d := Delta{Time: cur.Time}
	if !prev.Time.IsZero() {
		d.Period = cur.Time.Sub(prev.Time)
	}
	old := make(map[Key]*QP, len(prev.QPs))
	for i := range prev.QPs {
		old[prev.QPs[i].Key()] = &prev.QPs[i]
	}
	kept := make(map[Key]bool, len(cur.QPs))
	for i := range cur.QPs {
		q := &cur.QPs[i]
		qd := QPDelta{QP: *q}
		if p, ok := old[q.Key()]; ok && sameQP(p, q) {
			kept[q.Key()] = true
			qd.SQPSN = (q.SQPSN - p.SQPSN) & psnMask
			qd.RQPSN = (q.RQPSN - p.RQPSN) & psnMask
		} else {
			qd.New = !prev.Time.IsZero()
		}
		d.QPs = append(d.QPs, qd)
	}
	for i := range prev.QPs {
		if p := &prev.QPs[i]; !kept[p.Key()] {
			d.QPs = append(d.QPs, QPDelta{QP: *p, Final: true})
		}
	}
	type pkey struct {
		dev  uint32
		name string
		port uint32
	}
	oldPorts := map[pkey]*Port{}
	for i := range prev.Devices {
		for j := range prev.Devices[i].Ports {
			oldPorts[pkey{prev.Devices[i].Index, prev.Devices[i].Name, prev.Devices[i].Ports[j].Index}] = &prev.Devices[i].Ports[j]
		}
	}
	secs := d.Period.Seconds()
	for i := range cur.Devices {
		dev := &cur.Devices[i]
		for j := range dev.Ports {
			p := &dev.Ports[j]
			pd := PortDelta{Device: dev.Name, DeviceIndex: dev.Index, Port: *p,
				Counters: make(map[string]uint64, len(p.Counters)), Rates: make(map[string]float64, len(p.Counters))}
			op := oldPorts[pkey{dev.Index, dev.Name, p.Index}]
			for name, v := range p.Counters {
				var base uint64
				if op != nil {
					if ov, ok := op.Counters[name]; ok {
						if ov <= v {
							base = ov
						} else {
							pd.Reset = append(pd.Reset, name)
						}
					} else {
						base = v // a counter that just appeared: no change known
					}
				} else {
					base = v // a port that just appeared
				}
				pd.Counters[name] = v - base
				if secs > 0 {
					pd.Rates[name] = float64(v-base) / secs
				}
			}
			slices.Sort(pd.Reset)
			d.Ports = append(d.Ports, pd)
		}
	}
	return d
}
