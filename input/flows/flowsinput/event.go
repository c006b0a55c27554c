package flowsinput

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/internal/ecsfields"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.flows"

// TCP states (linux/tcp_states.h) that decide whether a flow without a
// process names its user.
const (
	stateSynRecv  = 3
	stateTimeWait = 6
)

// Event converts f, with d its delta from flows.Diff, into a
// fleutan.flows event for the collection that started at ts, with t's
// window and collection time. Its objects are pipeline.Objects built from
// one block, members listed in key order: at thousands of flows per
// period this is the input's whole per-event cost.
func Event(f *flows.Flow, d flows.FlowDelta, ts time.Time, t input.Times) pipeline.Event {
	return BuildEvent(pipeline.NewBuilder(eventObjects, eventMembers), f, d, ts, t)
}

// eventObjects and eventMembers are how many objects and members a flow
// event has at most (an established TCP flow with a process and deltas).
const eventObjects, eventMembers = 16, 79

// BuildEvent is Event with the objects taken from b: the input builds a
// chunk of events with one Builder, which it resets once they are
// published.
func BuildEvent(b *pipeline.Builder, f *flows.Flow, d flows.FlowDelta, ts time.Time, t input.Times) pipeline.Event {
	listening := f.Direction == flows.Listening
	local, remote := unmap(f.Local), unmap(f.Remote)
	// Room for the flow's own top-level objects and for what the pipeline
	// adds (pipeline.ReservedKeys): a map that grows past 8 entries is
	// rebuilt, at a cost that shows in the per-event profile.
	fields := b.Root(8 + pipeline.ReservedKeys)
	fields["event"] = b.Object(
		pipeline.String("dataset", Dataset),
		pipeline.Int64("duration", f.EventDuration(ts, t.Window).Nanoseconds()),
		pipeline.String("kind", "metric"),
		pipeline.String("module", "fleutan"),
	)

	network := make([]pipeline.Member, 0, 7)
	flow := make([]pipeline.Member, 0, 12)
	if !listening {
		// ECS: the source is the side that initiated the connection.
		src, dst := local, remote
		if f.Direction == flows.Inbound {
			src, dst = remote, local
		}
		var source, destination *[2]uint64
		if f.HasTCP {
			out, in := f.BytesOut(), f.BytesIn()
			segsOut, segsIn := uint64(f.TCP.SegsOut), uint64(f.TCP.SegsIn)
			if f.Direction == flows.Inbound {
				out, in, segsOut, segsIn = in, out, segsIn, segsOut
			}
			network = append(network, pipeline.Uint64("bytes", out+in))
			source, destination = &[2]uint64{out, segsOut}, &[2]uint64{in, segsIn}
		}
		network = append(network, pipeline.String("community_id", communityid.V1(0, f.Protocol, src, dst)))
		fields["source"] = endpoint(b, src, source)
		fields["destination"] = endpoint(b, dst, destination)
	} else {
		fields["source"] = endpoint(b, local, nil)
	}
	network = append(network,
		pipeline.String("direction", ecsfields.Direction(f.Direction)),
		pipeline.String("iana_number", strconv.Itoa(int(f.Protocol))),
	)
	if !listening && f.HasTCP {
		network = append(network, pipeline.Uint64("packets", uint64(f.TCP.SegsOut)+uint64(f.TCP.SegsIn)))
	}
	network = append(network,
		pipeline.String("transport", flows.TransportName(f.Protocol)),
		pipeline.String("type", networkType(f, local, remote)),
	)
	fields["network"] = b.Object(network...)

	if d.OK {
		flow = append(flow, pipeline.Any("delta", b.Object(
			pipeline.Uint64("bytes_in", d.BytesIn),
			pipeline.Uint64("bytes_out", d.BytesOut),
			pipeline.Uint64("retrans", d.Retrans),
			pipeline.Uint64("segs_in", d.SegsIn),
			pipeline.Uint64("segs_out", d.SegsOut),
		)))
	}
	series := f.Key().String()
	if f.Closed {
		// Connections that lived between two collections may reuse a
		// 4-tuple (and have no inode): the cookie keeps their ids apart.
		series += "/" + strconv.FormatUint(f.Cookie, 10)
	}
	flow = append(flow,
		pipeline.String("direction", string(f.Direction)),
		pipeline.Bool("final", f.Final),
		pipeline.String("id", FlowID(series)),
		pipeline.Uint64("inode", uint64(f.Inode)),
		pipeline.Any("local", endpoint(b, local, nil)),
		pipeline.Uint64("netns", f.Netns),
	)
	if f.NetnsName != "" {
		flow = append(flow, pipeline.String("netns_name", f.NetnsName))
	}
	if !listening {
		flow = append(flow, pipeline.Any("remote", endpoint(b, remote, nil)))
	}
	if r := f.Route; r != nil {
		flow = append(flow, pipeline.Any("route", routeObject(b, r)))
	}
	flow = append(flow, pipeline.String("state", flows.StateName(f.State)))
	if f.HasTCP {
		flow = append(flow, pipeline.Any("tcp", tcpObject(b, &f.TCP, f.Congestion)))
	}
	fields["fleutan"] = b.Object(
		pipeline.Any("collection", b.Object(pipeline.Int64("duration_us", t.CollectionMicros()))),
		pipeline.Any("flow", b.Object(flow...)),
	)

	if p := f.Process; p != nil {
		proc, user := ecsfields.ProcessObjects(b, p)
		fields["process"] = proc
		if !f.CommOnly {
			fields["user"] = user
		}
	} else if f.State != stateTimeWait && f.State != stateSynRecv && !f.Closed {
		// Without a process the socket's owner (sock_i_uid) still names the
		// user; TIME-WAIT and request sockets have none and report 0.
		fields["user"] = b.Object(pipeline.String("id", strconv.FormatUint(uint64(f.UID), 10)))
	}

	return pipeline.Event{Timestamp: ts, Fields: fields, Series: series}
}

// FlowID is fleutan.flow.id: the 64-bit FNV-1a hash of a flow's series
// key, in 16 hex digits. It names the flow in a query, and is the
// dimension that keeps two flows' events of one collection apart in a
// time series data stream. A collision needs two flows of one agent in
// the same collection: at 36,000 flows about 2^-35.
func FlowID(series string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(series); i++ {
		h ^= uint64(series[i])
		h *= 1099511628211
	}
	var b [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[h&15]
		h >>= 4
	}
	return string(b[:])
}

// routeObject is fleutan.flow.route; a peer on a connected network has
// no gateway, a route without a preferred source no src.
func routeObject(b *pipeline.Builder, r *flows.Route) *pipeline.Object {
	ms := make([]pipeline.Member, 0, 3)
	ms = append(ms, pipeline.String("device", r.Device))
	if r.Gateway.IsValid() {
		ms = append(ms, pipeline.String("gateway", r.Gateway.String()))
	}
	if r.Src.IsValid() {
		ms = append(ms, pipeline.String("src", r.Src.String()))
	}
	return b.Object(ms...)
}

// tcpObject is fleutan.flow.tcp: the kernel's tcp_info for the socket.
// Each field is reported only when the kernel's struct reaches it (its end
// offset in struct tcp_info, linux/tcp.h).
func tcpObject(b *pipeline.Builder, t *flows.TCPInfo, congestion string) *pipeline.Object {
	ms := make([]pipeline.Member, 0, 19)
	u := func(end int, key string, v uint64) {
		if t.Has(end) {
			ms = append(ms, pipeline.Uint64(key, v))
		}
	}
	u(168, "bdp_bytes", t.BDPBytes()) // delivery_rate and min_rtt
	u(128, "bytes_acked", t.BytesAcked)
	u(136, "bytes_received", t.BytesReceived)
	u(216, "bytes_retrans", t.BytesRetrans)
	u(208, "bytes_sent", t.BytesSent)
	ms = append(ms, pipeline.String("congestion", congestion))
	u(84, "cwnd", uint64(t.Cwnd))
	u(168, "delivery_rate_bps", t.DeliveryRate*8)
	u(36, "lost", uint64(t.Lost))
	u(152, "min_rtt_us", uint64(t.MinRTTMicros))
	u(20, "mss", uint64(t.MSS))
	u(148, "notsent_bytes", uint64(t.NotsentBytes))
	if bits, ok := pacingBits(t.PacingRate); ok {
		u(112, "pacing_rate_bps", bits)
	}
	u(72, "rtt_us", uint64(t.RTTMicros))
	u(76, "rttvar_us", uint64(t.RTTVarMicros))
	u(144, "segs_in", uint64(t.SegsIn))
	u(140, "segs_out", uint64(t.SegsOut))
	u(80, "ssthresh", uint64(t.Ssthresh))
	u(104, "total_retrans", uint64(t.TotalRetrans))
	return b.Object(ms...)
}

// pacingBits converts tcpi_pacing_rate to bits per second. "Unlimited"
// (~0ULL, see sk_pacing_rate in include/net/sock.h), as on listening
// sockets, reports no rate: a sentinel would read as a real 147 Ebit/s and
// overflow Elasticsearch's signed long.
func pacingBits(r uint64) (uint64, bool) {
	if r > (1<<63-1)/8 {
		return 0, false
	}
	return r * 8, true
}

func networkType(f *flows.Flow, local, remote netip.AddrPort) string {
	a := remote.Addr()
	if f.Direction == flows.Listening || !a.IsValid() {
		a = local.Addr()
	}
	if a.IsValid() && !a.Is4() {
		return "ipv6"
	}
	if !a.IsValid() {
		return flows.FamilyName(f.Family)
	}
	return "ipv4"
}

// unmap shows a v4-mapped address of a dual-stack socket as the IPv4
// address the packets carry.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// endpoint is a source, destination, local or remote object; traffic, when
// known, is its bytes and packets.
func endpoint(b *pipeline.Builder, ap netip.AddrPort, traffic *[2]uint64) *pipeline.Object {
	ip, port := pipeline.String("ip", ap.Addr().String()), pipeline.Int("port", int(ap.Port()))
	if traffic == nil {
		return b.Object(ip, port)
	}
	return b.Object(pipeline.Uint64("bytes", traffic[0]), ip, pipeline.Uint64("packets", traffic[1]), port)
}
