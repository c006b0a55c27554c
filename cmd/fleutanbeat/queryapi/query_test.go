package queryapi

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	all := []string{"pid", "process", "port", "peer"}
	p := func(s string) *netip.Prefix { x := netip.MustParsePrefix(s); return &x }
	tests := []struct {
		query   string
		allowed []string
		want    query
		err     string
	}{
		{"", all, query{}, ""},
		{"pid=42&process=curl&port=443&peer=10.1.2.3/8", all, query{pid: ptr(42), process: ptr("curl"), port: ptr[uint16](443), peer: p("10.0.0.0/8")}, ""},
		{"peer=::1", all, query{peer: p("::1/128")}, ""},
		{"peer=10.0.0.2", all, query{peer: p("10.0.0.2/32")}, ""},
		{"port=0", all, query{port: ptr[uint16](0)}, ""},
		{"port=65535", all, query{port: ptr[uint16](65535)}, ""},
		{"pid=4194304", all, query{pid: ptr(4194304)}, ""},
		{"process=123456789012345", all, query{process: ptr("123456789012345")}, ""},
		{"process=%C3%A9t%C3%A9", all, query{process: ptr("été")}, ""},

		{"pid=abc", all, query{}, `query parameter pid: "abc" is not a decimal number`},
		{"pid=0", all, query{}, "query parameter pid: 0 is not a process id"},
		{"pid=-1", all, query{}, `query parameter pid: "-1" is not a decimal number`},
		{"pid=%2B1", all, query{}, `query parameter pid: "+1" is not a decimal number`},
		{"pid=4194305", all, query{}, "query parameter pid: 4194305 is out of range"},
		{"pid=99999999999999999999999", all, query{}, "query parameter pid: 99999999999999999999999 is out of range"},
		{"pid=", all, query{}, "query parameter pid: empty"},
		{"port=65536", all, query{}, "query parameter port: 65536 is out of range (0-65535)"},
		{"port=1.5", all, query{}, `query parameter port: "1.5" is not a decimal number`},
		{"process=", all, query{}, `query parameter process: "" is not a process name`},
		{"process=1234567890123456", all, query{}, `query parameter process: "1234567890123456" is not a process name`},
		{"peer=10.0.0.0/33", all, query{}, `query parameter peer: "10.0.0.0/33" is not a CIDR`},
		{"peer=010.0.0.1", all, query{}, `query parameter peer: "010.0.0.1" is not an address or a CIDR`},
		{"peer=example.com", all, query{}, `query parameter peer: "example.com" is not an address or a CIDR`},
		{"peer=::ffff:10.0.0.1", all, query{}, "without an embedded IPv4 address"},
		{"peer=fe80::1%25eth0", all, query{}, "or a zone"},
		{"pid=1&pid=2", all, query{}, `query parameter "pid" given 2 times`},
		{"pids=1", all, query{}, `unknown query parameter "pids" (known: pid, process, port, peer)`},
		{"pid=1", nil, query{}, `unknown query parameter "pid": /x takes none`},
		{"a=%zz", all, query{}, "malformed query string"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := parseQuery(httptest.NewRequest("GET", "/x?"+tt.query, nil), tt.allowed)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !eqPtr(got.pid, tt.want.pid) || !eqPtr(got.process, tt.want.process) || !eqPtr(got.port, tt.want.port) || !eqPtr(got.peer, tt.want.peer) {
				t.Errorf("got %s, want %s", dump(got), dump(tt.want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func dump(q query) string {
	var parts []string
	if q.pid != nil {
		parts = append(parts, fmt.Sprint("pid=", *q.pid))
	}
	if q.process != nil {
		parts = append(parts, fmt.Sprintf("process=%q", *q.process))
	}
	if q.port != nil {
		parts = append(parts, fmt.Sprint("port=", *q.port))
	}
	if q.peer != nil {
		parts = append(parts, fmt.Sprint("peer=", *q.peer))
	}
	return strings.Join(parts, " ")
}

// peerCases are addresses and CIDRs on both sides of the line.
var peerCases = []string{
	"0.0.0.0", "0.0.0.0/0", "10.0.0.0/8", "255.255.255.255/32", "1.2.3.4/0", "192.168.1.1/24",
	"256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4/33", "1.2.3.4/08", "1.2.3.4/", "/8", " 1.2.3.4", "1.2.3.4\n",
	"::", "::/0", "::1", "::1/128", "fd00::/8", "FD00::1/64", "2001:db8::1:2:3:4:5", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
	"0001:0002::0003", "1::/129", "1:2:3:4:5:6:7:8:9", "12345::", "1:::2", ":1", "1:", "g::1", "::ffff:1.2.3.4", "fe80::1%eth0",
	"::/01", "::/128", "a:b:c:d:e:f:0:1/127", "",
}

// TestPeerPatternIsTheParser: the spec's pattern for peer and parsePeer
// accept exactly the same strings, so schemathesis's valid values are
// accepted and its invalid ones refused.
func TestPeerPatternIsTheParser(t *testing.T) {
	re := peerPattern(t)
	for _, s := range peerCases {
		_, err := parsePeer(s)
		if match := re.MatchString(s); match != (err == nil) {
			t.Errorf("%q: pattern matches %v, parser error %v", s, match, err)
		}
	}
}

func FuzzPeerPatternIsTheParser(f *testing.F) {
	for _, s := range peerCases {
		f.Add(s)
	}
	re := peerPattern(f)
	f.Fuzz(func(t *testing.T, s string) {
		_, err := parsePeer(s)
		if match := re.MatchString(s); match != (err == nil) {
			t.Errorf("%q: pattern matches %v, parser error %v", s, match, err)
		}
	})
}

func peerPattern(t testing.TB) *regexp.Regexp {
	t.Helper()
	doc := loadSpec(t)
	p := doc.Components.Parameters["Peer"]
	if p == nil || p.Schema == nil || p.Schema.Pattern == "" {
		t.Fatal("openapi.yaml has no pattern for the Peer parameter")
	}
	return regexp.MustCompile(p.Schema.Pattern)
}
