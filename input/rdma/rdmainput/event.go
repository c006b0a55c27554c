package rdmainput

import (
	"crypto/sha1"
	"encoding/base64"
	"net/netip"
	"sort"
	"strconv"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/ecsfields"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.rdma"

// Transport is ECS network.transport for a device's protocol as the
// kernel names it.
func Transport(protocol string) string {
	switch protocol {
	case "roce":
		return "roce"
	case "ib":
		return "infiniband"
	case "iw":
		return "iwarp"
	case "":
		return "unknown"
	}
	return protocol
}

// FlowID names a queue pair's connection the same from both of its ends:
// a version, then the SHA-1 of the two endpoints in order, each an
// address, port and QPN (the CM's, when the queue pair is connected
// through the RDMA CM), or, without the CM, the device and the two QPNs
// (then only the ends on one device agree). Community ID does not describe
// queue pairs: it has no QPN.
func FlowID(q *rdma.QP, transport string) string {
	h := sha1.New()
	h.Write([]byte("rdma|" + transport + "|"))
	if q.CM != nil && q.CM.Src.IsValid() && q.CM.Dst.IsValid() {
		a := q.CM.Src.String() + "/" + strconv.FormatUint(uint64(q.LQPN), 10)
		b := q.CM.Dst.String() + "/" + strconv.FormatUint(uint64(q.RQPN), 10)
		if b < a {
			a, b = b, a
		}
		h.Write([]byte(a + "|" + b))
	} else {
		lo, hi := q.LQPN, q.RQPN
		if hi < lo {
			lo, hi = hi, lo
		}
		h.Write([]byte(q.Device + "|" + strconv.FormatUint(uint64(lo), 10) + "|" + strconv.FormatUint(uint64(hi), 10)))
	}
	return "1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func addrPort(ap netip.AddrPort) pipeline.M {
	return pipeline.M{"ip": ap.Addr().Unmap().String(), "port": int(ap.Port())}
}

type portInfo struct {
	netdev, state, transport string
}

// events turns a Diff into the period's events. first: the collection
// is the input's first, whose deltas are unknown.
func events(d rdma.Delta, cur rdma.Snapshot, first bool, cfg Config, t input.Times) []pipeline.Event {
	ports := map[string]portInfo{}
	protocol := map[uint32]string{}
	for _, dev := range cur.Devices {
		protocol[dev.Index] = dev.Protocol
		for _, p := range dev.Ports {
			ports[dev.Name+"/"+strconv.FormatUint(uint64(p.Index), 10)] = portInfo{p.Netdev, p.State, Transport(dev.Protocol)}
		}
	}
	us := t.CollectionMicros()
	base := func() pipeline.M {
		return pipeline.M{
			"event": pipeline.M{"dataset": Dataset, "kind": "metric", "module": "fleutan", "duration": t.Window.Nanoseconds()},
		}
	}
	var out []pipeline.Event
	for i := range d.QPs {
		qd := &d.QPs[i]
		q := &qd.QP
		if q.PID == 0 && !cfg.KernelQPs {
			continue
		}
		pi := ports[q.Device+"/"+strconv.FormatUint(uint64(q.Port), 10)]
		transport := Transport(protocol[q.DeviceIndex])
		if pi.transport != "" {
			transport = pi.transport
		}
		qp := pipeline.M{"lqpn": int64(q.LQPN), "type": q.Type, "state": q.State, "sq_psn": int64(q.SQPSN)}
		if q.RQPN != 0 || q.Type == "RC" || q.Type == "UC" {
			qp["rqpn"] = int64(q.RQPN)
			qp["rq_psn"] = int64(q.RQPSN)
		}
		if q.PDN != 0 {
			qp["pdn"] = int64(q.PDN)
		}
		r := pipeline.M{
			"scope":   "qp",
			"device":  q.Device,
			"qp":      qp,
			"final":   qd.Final,
			"flow_id": FlowID(q, transport),
		}
		if q.Port != 0 {
			r["port"] = int64(q.Port)
		}
		if pi.netdev != "" {
			r["netdev"] = pi.netdev
		}
		if q.Netns != 0 {
			r["netns"] = int64(q.Netns)
		}
		if q.KernelOwner != "" {
			r["kernel_owner"] = q.KernelOwner
		}
		if !first && !qd.New && !qd.Final {
			r["delta"] = pipeline.M{"sq_psn": int64(qd.SQPSN), "rq_psn": int64(qd.RQPSN)}
		}
		fields := base()
		network := pipeline.M{"transport": transport}
		if cm := q.CM; cm != nil {
			r["cm"] = pipeline.M{"id": int64(cm.ID), "port_space": cm.PortSpace, "state": cm.State}
			if cm.Src.IsValid() {
				r["local"] = addrPort(cm.Src)
				if cm.Src.Addr().Unmap().Is4() {
					network["type"] = "ipv4"
				} else {
					network["type"] = "ipv6"
				}
			}
			if cm.Dst.IsValid() {
				r["remote"] = addrPort(cm.Dst)
			}
			if cm.Src.IsValid() && cm.Dst.IsValid() {
				src, dst := cm.Src, cm.Dst
				network["direction"] = "egress"
				if cm.Inbound {
					src, dst = dst, src
					network["direction"] = "ingress"
				}
				fields["source"], fields["destination"] = addrPort(src), addrPort(dst)
			}
		}
		fields["network"] = network
		if q.Process != nil {
			fields["process"], fields["user"] = ecsfields.ProcessObjects(pipeline.NewBuilder(3, 8), q.Process)
		} else if q.PID != 0 {
			fields["process"] = pipeline.M{"pid": q.PID}
		}
		fields["fleutan"] = pipeline.M{"rdma": r, "collection": pipeline.M{"duration_us": us}}
		series := "rdma/qp/" + q.Device + "/" + strconv.FormatUint(uint64(q.LQPN), 10) + "/" + strconv.Itoa(q.PID)
		out = append(out, pipeline.Event{Timestamp: cur.Time, Fields: fields, Series: series})
	}
	if first || !cfg.Counters {
		return out
	}
	for i := range d.Ports {
		pd := &d.Ports[i]
		names := make([]string, 0, len(pd.Port.Counters))
		for n := range pd.Port.Counters {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			c := pipeline.M{"name": n, "value": int64(pd.Port.Counters[n]), "delta": int64(pd.Counters[n]), "rate": pd.Rates[n]}
			r := pipeline.M{"scope": "counter", "device": pd.Device, "port": int64(pd.Port.Index), "port_state": pd.Port.State, "counter": c}
			if pd.Port.Netdev != "" {
				r["netdev"] = pd.Port.Netdev
			}
			fields := base()
			fields["fleutan"] = pipeline.M{"rdma": r, "collection": pipeline.M{"duration_us": us}}
			series := "rdma/counter/" + pd.Device + "/" + strconv.FormatUint(uint64(pd.Port.Index), 10) + "/" + n
			out = append(out, pipeline.Event{Timestamp: cur.Time, Fields: fields, Series: series})
		}
	}
	return out
}
