package flows

import "testing"

func TestTransportNameIsTheIANAKeyword(t *testing.T) {
	tests := []struct {
		proto uint8
		want  string
	}{
		{6, "tcp"},
		{17, "udp"},
		{1, "icmp"},
		{58, "ipv6-icmp"}, // ECS's own example; never "icmpv6" or "58"
		{132, "sctp"},
		{136, "udplite"},
		{33, "dccp"},
		{47, "gre"},
		{4, "ipv4"},
		{94, "ipip"},
		{108, "ipcomp"},
		{137, "mpls-in-ip"},
		{115, "l2tp"},
		{89, "89"}, // OSPF over a raw socket: no IPPROTO_ constant, the number
		{0, "0"},
		{255, "255"}, // IPPROTO_RAW is IANA-reserved, not a keyword
	}
	for _, tt := range tests {
		if got := TransportName(tt.proto); got != tt.want {
			t.Errorf("TransportName(%d) = %q, want %q", tt.proto, got, tt.want)
		}
	}
}
