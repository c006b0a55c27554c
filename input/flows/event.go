package flows

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.flows"

// Event converts f into a fleutan.flows event for the collection that
// started at ts and took took.
func (f *Flow) Event(ts time.Time, took time.Duration) pipeline.Event {
	listening := f.Direction == Listening
	local, remote := unmap(f.Local), unmap(f.Remote)

	network := pipeline.M{
		"transport":   transportName(f.Protocol),
		"type":        networkType(f, local, remote),
		"iana_number": strconv.Itoa(int(f.Protocol)),
		"direction":   ecsDirection(f.Direction),
	}
	flow := pipeline.M{
		"local":     endpoint(local),
		"state":     sockdiag.StateName(f.State),
		"inode":     uint64(f.Inode),
		"netns":     f.Netns,
		"direction": string(f.Direction),
		"final":     f.Final,
	}
	if f.NetnsName != "" {
		flow["netns_name"] = f.NetnsName
	}
	// Room for the flow's own top-level objects and for what the pipeline
	// adds (pipeline.ReservedKeys): a map that grows past 8 entries is
	// rebuilt, at a cost that shows in the per-event profile.
	fields := make(pipeline.M, 8+pipeline.ReservedKeys)
	fields["event"] = pipeline.M{
		"dataset":  Dataset,
		"module":   "fleutan",
		"kind":     "metric",
		"duration": took.Nanoseconds(),
	}
	fields["network"] = network
	fields["fleutan"] = pipeline.M{"flow": flow}

	if listening {
		fields["source"] = endpoint(local)
	} else {
		flow["remote"] = endpoint(remote)
		// ECS: the source is the side that initiated the connection.
		src, dst := local, remote
		if f.Direction == Inbound {
			src, dst = remote, local
		}
		source, destination := endpoint(src), endpoint(dst)
		network["community_id"] = communityid.V1(0, f.Protocol, src, dst)
		if f.HasTCP {
			out, in := f.BytesOut(), f.BytesIn()
			segsOut, segsIn := uint64(f.TCP.SegsOut), uint64(f.TCP.SegsIn)
			if f.Direction == Inbound {
				out, in, segsOut, segsIn = in, out, segsIn, segsOut
			}
			source["bytes"], source["packets"] = out, segsOut
			destination["bytes"], destination["packets"] = in, segsIn
			network["bytes"] = out + in
			network["packets"] = segsOut + segsIn
		}
		fields["source"], fields["destination"] = source, destination
	}

	if f.HasTCP {
		t := &f.TCP
		flow["tcp"] = pipeline.M{
			"rtt_us":            uint64(t.RTTMicros),
			"rttvar_us":         uint64(t.RTTVarMicros),
			"min_rtt_us":        uint64(t.MinRTTMicros),
			"cwnd":              uint64(t.Cwnd),
			"ssthresh":          uint64(t.Ssthresh),
			"mss":               uint64(t.MSS),
			"bytes_acked":       t.BytesAcked,
			"bytes_received":    t.BytesReceived,
			"bytes_sent":        t.BytesSent,
			"bytes_retrans":     t.BytesRetrans,
			"segs_in":           uint64(t.SegsIn),
			"segs_out":          uint64(t.SegsOut),
			"total_retrans":     uint64(t.TotalRetrans),
			"lost":              uint64(t.Lost),
			"delivery_rate_bps": t.DeliveryRate * 8,
			"notsent_bytes":     uint64(t.NotsentBytes),
			"congestion":        f.Congestion,
			"bdp_bytes":         t.BDPBytes(),
		}
		if bits, ok := pacingBits(t.PacingRate); ok {
			flow["tcp"].(pipeline.M)["pacing_rate_bps"] = bits
		}
	}
	if f.HasDelta {
		flow["delta"] = pipeline.M{
			"bytes_in":  f.Delta.BytesIn,
			"bytes_out": f.Delta.BytesOut,
			"segs_in":   f.Delta.SegsIn,
			"segs_out":  f.Delta.SegsOut,
			"retrans":   f.Delta.Retrans,
		}
	}

	if p := f.Process; p != nil {
		proc := pipeline.M{"pid": p.PID, "name": p.Name}
		if p.Executable != "" {
			proc["executable"] = p.Executable
		}
		if len(p.Args) > 0 {
			proc["args"] = p.Args
		}
		if p.PPID > 0 {
			proc["parent"] = pipeline.M{"pid": p.PPID}
		}
		fields["process"] = proc
		user := pipeline.M{"id": strconv.FormatUint(uint64(p.UID), 10)}
		if p.User != "" {
			user["name"] = p.User
		}
		fields["user"] = user
	} else if f.State != stateTimeWait && f.State != stateSynRecv {
		// Without a process the socket's owner (sock_i_uid) still names the
		// user; TIME-WAIT and request sockets have none and report 0.
		fields["user"] = pipeline.M{"id": strconv.FormatUint(uint64(f.UID), 10)}
	}

	return pipeline.Event{Timestamp: ts, Fields: fields, Series: f.Key().String()}
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

// ecsDirection maps to ECS network.direction, which has no value for a
// socket that waits for peers.
func ecsDirection(d Direction) string {
	switch d {
	case Inbound, Outbound:
		return string(d)
	}
	return "unknown"
}

func networkType(f *Flow, local, remote netip.AddrPort) string {
	a := remote.Addr()
	if f.Direction == Listening || !a.IsValid() {
		a = local.Addr()
	}
	if a.IsValid() && !a.Is4() {
		return "ipv6"
	}
	if !a.IsValid() {
		return familyName(f.Family)
	}
	return "ipv4"
}

// unmap shows a v4-mapped address of a dual-stack socket as the IPv4
// address the packets carry.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func endpoint(ap netip.AddrPort) pipeline.M {
	return pipeline.M{"ip": ap.Addr().String(), "port": int(ap.Port())}
}
