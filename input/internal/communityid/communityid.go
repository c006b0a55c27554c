// Package communityid computes Community ID flow hashes, version 1, as
// specified by https://github.com/corelight/community-id-spec, so that
// fleutanbeat's network.community_id matches Zeek, Suricata, Elastic Packetbeat
// and every other producer for the same flow.
package communityid

import (
	"crypto/sha1" //nolint:gosec // the spec fixes SHA-1; this is an identifier, not a MAC
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

// IANA protocol numbers the spec gives special treatment.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// V1 returns the version 1 Community ID ("1:" + base64 of a SHA-1) of the
// flow src -> dst using IANA protocol proto. The result is the same for both
// directions of a flow.
//
// Ports are hashed for TCP, UDP and SCTP. For ICMP and ICMPv6, src.Port() is
// read as the ICMP type and dst.Port() as the code, mapped to port
// equivalents as the spec does (after Zeek's ICMP4_counterpart). Other
// protocols are hashed without ports.
//
// IPv4-mapped IPv6 addresses are unmapped, because a dual-stack AF_INET6
// socket talking to ::ffff:a.b.c.d sends IPv4 packets on the wire and other
// sensors hash those with 4-byte addresses. V1 returns "" when an address is
// invalid or the two families differ: no packet carries such a tuple.
func V1(seed uint16, proto uint8, src, dst netip.AddrPort) string {
	var out [2 + 28]byte // "1:" + base64 of 20 bytes
	if !appendV1(&out, seed, proto, src, dst) {
		return ""
	}
	return string(out[:])
}

func appendV1(out *[30]byte, seed uint16, proto uint8, src, dst netip.AddrPort) bool {
	sa, da := src.Addr().Unmap().WithZone(""), dst.Addr().Unmap().WithZone("")
	if !sa.IsValid() || !da.IsValid() || sa.Is4() != da.Is4() {
		return false
	}
	sp, dp := src.Port(), dst.Port()
	hasPorts, oneWay := true, false
	switch proto {
	case protoTCP, protoUDP, protoSCTP:
	case protoICMP:
		dp, oneWay = icmpPorts(icmp4Counterpart, sp, dp)
	case protoICMPv6:
		dp, oneWay = icmpPorts(icmp6Counterpart, sp, dp)
	default:
		hasPorts, sp, dp = false, 0, 0
	}
	// The spec orders endpoints so that the smaller address (then the
	// smaller port) comes first; one-way ICMP messages keep their direction.
	if !oneWay {
		if c := sa.Compare(da); c > 0 || (c == 0 && sp > dp) {
			sa, da, sp, dp = da, sa, dp, sp
		}
	}

	// seed(2) saddr(4|16) daddr(4|16) proto(1) pad(1) [sport(2) dport(2)],
	// all in network byte order.
	var buf [40]byte
	binary.BigEndian.PutUint16(buf[0:], seed)
	n := 2
	if sa.Is4() {
		a, b := sa.As4(), da.As4()
		n += copy(buf[n:], a[:])
		n += copy(buf[n:], b[:])
	} else {
		a, b := sa.As16(), da.As16()
		n += copy(buf[n:], a[:])
		n += copy(buf[n:], b[:])
	}
	buf[n] = proto
	n += 2
	if hasPorts {
		binary.BigEndian.PutUint16(buf[n:], sp)
		binary.BigEndian.PutUint16(buf[n+2:], dp)
		n += 4
	}
	sum := sha1.Sum(buf[:n]) //nolint:gosec // see import
	out[0], out[1] = '1', ':'
	base64.StdEncoding.Encode(out[2:], sum[:])
	return true
}

// icmpPorts returns the destination port equivalent for an ICMP message of
// type typ and code code: the counterpart type for request/response pairs,
// else the code, with oneWay set.
func icmpPorts(counterpart func(uint16) (uint16, bool), typ, code uint16) (dport uint16, oneWay bool) {
	if c, ok := counterpart(typ); ok {
		return c, false
	}
	return code, true
}

// icmp4Counterpart pairs ICMP request and reply types (RFC 792, RFC 950,
// RFC 1256), both ways, as the spec's reference implementation does: an
// advertisement answering a solicitation is the same flow.
func icmp4Counterpart(t uint16) (uint16, bool) {
	switch t {
	case 8: // echo
		return 0, true
	case 0: // echo reply
		return 8, true
	case 13: // timestamp
		return 14, true
	case 14:
		return 13, true
	case 15: // information request
		return 16, true
	case 16:
		return 15, true
	case 10: // router solicitation
		return 9, true
	case 9: // router advertisement
		return 10, true
	case 17: // address mask request
		return 18, true
	case 18:
		return 17, true
	}
	return 0, false
}

// icmp6Counterpart pairs ICMPv6 request and reply types (RFC 4443, RFC 4861,
// RFC 2710, RFC 4620, RFC 6275).
func icmp6Counterpart(t uint16) (uint16, bool) {
	switch t {
	case 128: // echo request
		return 129, true
	case 129:
		return 128, true
	case 133: // router solicitation
		return 134, true
	case 134:
		return 133, true
	case 135: // neighbor solicitation
		return 136, true
	case 136:
		return 135, true
	case 130: // multicast listener query
		return 131, true
	case 131:
		return 130, true
	case 139: // node information query
		return 140, true
	case 140:
		return 139, true
	case 144: // home agent address discovery request
		return 145, true
	case 145:
		return 144, true
	}
	return 0, false
}
