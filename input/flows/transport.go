package flows

import "strconv"

// transportNames are the IANA "Assigned Internet Protocol Numbers"
// keywords, lower-cased as ECS asks for network.transport, of the
// protocols Linux names (IPPROTO_* in linux/in.h, and ICMPv6 from
// linux/in6.h): those a socket's sk_protocol can hold, which is what the
// qdisc input's eBPF program reports. Note the keywords that differ from
// the kernel's names: 4 is "ipv4" (IPPROTO_IPIP), 94 "ipip"
// (IPPROTO_BEETPH), 58 "ipv6-icmp", 108 "ipcomp" (IPPROTO_COMP), 137
// "mpls-in-ip" (IPPROTO_MPLS).
var transportNames = [256]string{
	1:   "icmp",
	2:   "igmp",
	4:   "ipv4",
	6:   "tcp",
	8:   "egp",
	12:  "pup",
	17:  "udp",
	22:  "xns-idp",
	29:  "iso-tp4",
	33:  "dccp",
	41:  "ipv6",
	46:  "rsvp",
	47:  "gre",
	50:  "esp",
	51:  "ah",
	58:  "ipv6-icmp",
	92:  "mtp",
	94:  "ipip",
	98:  "encap",
	103: "pim",
	108: "ipcomp",
	115: "l2tp",
	132: "sctp",
	136: "udplite",
	137: "mpls-in-ip",
	143: "ethernet",
}

// TransportName is network.transport for an IP protocol number: its IANA
// keyword in lower case, or the decimal number for a protocol outside
// transportNames (a raw socket's, say), which network.iana_number carries
// too.
func TransportName(p uint8) string {
	if n := transportNames[p]; n != "" {
		return n
	}
	return strconv.Itoa(int(p))
}
