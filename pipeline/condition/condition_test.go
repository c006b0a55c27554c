package condition

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

const whenPath = "processors.0.drop_event.when"

// parse builds the `when` section from YAML as the loader would hand it.
func parse(t testing.TB, src string) config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return config.NewRaw(doc.Content[0], "fleutanbeat.yml", whenPath)
}

func event() pipeline.M {
	return pipeline.M{
		"network": pipeline.M{"transport": "tcp", "iana_number": 6, "bytes": uint64(12345)},
		"source": pipeline.M{
			"ip":   netip.MustParseAddr("10.1.2.3"),
			"port": uint16(43512),
		},
		"destination": pipeline.M{
			"ip":   "2001:db8::1",
			"port": 443,
		},
		"client":  map[string]any{"ip": net.ParseIP("127.0.0.1")},
		"mapped":  netip.MustParseAddr("::ffff:192.168.1.9"),
		"process": pipeline.M{"name": "nginx", "pid": int32(812), "args": []string{"nginx", "-g", "daemon off;"}},
		"fleutan": pipeline.M{"flow": pipeline.M{
			"final": false,
			"tcp":   pipeline.M{"rtt_us": uint32(1500), "loss": 0.25, "big": uint64(1 << 63)},
		}},
		"event":    pipeline.M{"duration": 2 * time.Second, "neg": int64(-5)},
		"tags":     []any{"a", "b", 3},
		"nothing":  nil,
		"message":  "GET /index.html 200",
		"bad_ip":   "not-an-ip",
		"float_in": float32(2.5),
	}
}

// objectEvent is event() with every nested object an *pipeline.Object of
// typed members, as the flows input builds them: conditions must read both
// spellings alike.
func objectEvent() pipeline.M {
	out := pipeline.M{}
	for k, v := range event() {
		out[k] = toObject(v)
	}
	return out
}

func toObject(v any) any {
	m, ok := v.(pipeline.M)
	if !ok {
		if mm, isMap := v.(map[string]any); isMap {
			m = mm
		} else {
			return v
		}
	}
	var ms []pipeline.Member
	for k, v := range m {
		switch x := v.(type) {
		case string:
			ms = append(ms, pipeline.String(k, x))
		case int:
			ms = append(ms, pipeline.Int(k, x))
		case int64:
			ms = append(ms, pipeline.Int64(k, x))
		case uint64:
			ms = append(ms, pipeline.Uint64(k, x))
		case float64:
			ms = append(ms, pipeline.Float64(k, x))
		case bool:
			ms = append(ms, pipeline.Bool(k, x))
		default:
			ms = append(ms, pipeline.Any(k, toObject(v)))
		}
	}
	return pipeline.NewObject(ms...)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		when string
		want bool
	}{
		// equals
		{"equals string nested as the loader expands it", `equals: {process: {name: nginx}}`, true},
		{"equals string dotted key", `equals: {process.name: nginx}`, true},
		{"equals string differs", `equals: {process.name: apache}`, false},
		{"equals missing field", `equals: {process.title: nginx}`, false},
		{"equals int vs int", `equals: {network.iana_number: 6}`, true},
		{"equals int vs int32", `equals: {process.pid: 812}`, true},
		{"equals int vs uint16", `equals: {source.port: 43512}`, true},
		{"equals int vs uint64 differs", `equals: {network.bytes: 12}`, false},
		{"equals negative vs int64", `equals: {event.neg: -5}`, true},
		{"equals negative vs uint", `equals: {network.bytes: -5}`, false},
		{"equals huge uint", `equals: {fleutan.flow.tcp.big: 9223372036854775808}`, true},
		{"equals huge vs int", `equals: {network.iana_number: 9223372036854775808}`, false},
		{"equals named int type", `equals: {event.duration: 2000000000}`, true},
		{"equals int vs string field is a mismatch", `equals: {process.name: 6}`, false},
		{"equals quoted number vs int field is a mismatch", `equals: {network.iana_number: "6"}`, false},
		{"equals int vs float field is a mismatch", `equals: {fleutan.flow.tcp.loss: 0}`, false},
		{"equals bool", `equals: {fleutan.flow.final: false}`, true},
		{"equals bool differs", `equals: {fleutan.flow.final: true}`, false},
		{"equals bool vs string field", `equals: {process.name: true}`, false},
		{"equals string vs netip.Addr", `equals: {source.ip: 10.1.2.3}`, true},
		{"equals string vs netip.Addr differs", `equals: {source.ip: 10.1.2.4}`, false},
		{"equals non-IP string vs netip.Addr", `equals: {source.ip: nginx}`, false},
		{"equals string vs net.IP", `equals: {client.ip: 127.0.0.1}`, true},
		{"equals string vs mapped netip.Addr", `equals: {mapped: 192.168.1.9}`, true},
		{"equals string vs object", `equals: {process: nginx}`, false},
		{"equals several fields all match", `equals: {process.name: nginx, network.transport: tcp}`, true},
		{"equals several fields one differs", `equals: {process.name: nginx, network.transport: udp}`, false},
		// contains
		{"contains substring", `contains: {message: "/index"}`, true},
		{"contains substring absent", `contains: {message: "/admin"}`, false},
		{"contains list element", `contains: {process.args: "-g"}`, true},
		{"contains list needs a whole element", `contains: {process.args: "daemon"}`, false},
		{"contains []any element", `contains: {tags: b}`, true},
		{"contains []any non-string element", `contains: {tags: "3"}`, false},
		{"contains on a number", `contains: {network.iana_number: "6"}`, false},
		{"contains missing", `contains: {user.name: root}`, false},
		// regexp
		{"regexp match", `regexp: {process.name: "^ngi"}`, true},
		{"regexp unanchored", `regexp: {message: "index\\.html"}`, true},
		{"regexp no match", `regexp: {process.name: "^apache$"}`, false},
		{"regexp list element", `regexp: {process.args: "^daemon"}`, true},
		{"regexp on a number", `regexp: {network.iana_number: "6"}`, false},
		{"regexp missing", `regexp: {user.name: ".*"}`, false},
		// range
		{"range gte on int", `range: {network.iana_number: {gte: 6}}`, true},
		{"range gt on int equal", `range: {network.iana_number.gt: 6}`, false},
		{"range lt and gte on uint32", `range: {fleutan.flow.tcp.rtt_us: {gte: 1000, lt: 2000}}`, true},
		{"range lte fails", `range: {fleutan.flow.tcp.rtt_us.lte: 1499}`, false},
		{"range float bound", `range: {fleutan.flow.tcp.loss: {gt: 0.2, lt: 0.3}}`, true},
		{"range float32 field", `range: {float_in.gte: 2.5}`, true},
		{"range named type", `range: {event.duration.gte: 1e9}`, true},
		{"range negative", `range: {event.neg.lt: 0}`, true},
		{"range several fields anded", `range: {network.iana_number.lt: 10, source.port.lt: 1024}`, false},
		{"range on a string", `range: {process.name.gte: 0}`, false},
		{"range missing", `range: {user.id.gte: 0}`, false},
		// network
		{"network private netip.Addr", `network: {source.ip: private}`, true},
		{"network public string", `network: {destination.ip: public}`, true},
		{"network private string", `network: {destination.ip: private}`, false},
		{"network cidr v6 string", `network: {destination.ip: "2001:db8::/32"}`, true},
		{"network cidr", `network: {source.ip: 10.0.0.0/8}`, true},
		{"network cidr outside", `network: {source.ip: 192.168.0.0/16}`, false},
		{"network list is or", `network: {source.ip: [loopback, 10.1.0.0/16]}`, true},
		{"network list none", `network: {source.ip: [loopback, public]}`, false},
		{"network loopback net.IP", `network: {client.ip: loopback}`, true},
		{"network mapped address vs v4 cidr", `network: {mapped: 192.168.0.0/16}`, true},
		{"network mapped cidr", `network: {source.ip: "::ffff:10.0.0.0/104"}`, true},
		{"network bare address", `network: {source.ip: 10.1.2.3}`, true},
		{"network unparsable field", `network: {bad_ip: private}`, false},
		{"network number field", `network: {network.iana_number: private}`, false},
		{"network missing", `network: {host.ip: private}`, false},
		{"network two fields", `network: {source.ip: private, client.ip: loopback}`, true},
		// has_fields
		{"has_fields all present", `has_fields: [process.name, source.ip, nothing]`, true},
		{"has_fields object counts", `has_fields: [fleutan.flow.tcp]`, true},
		{"has_fields one missing", `has_fields: [process.name, user.name]`, false},
		// and / or / not
		{"and all", `and: [{equals: {process.name: nginx}}, {network: {source.ip: private}}]`, true},
		{"and one false", `and: [{equals: {process.name: nginx}}, {network: {source.ip: public}}]`, false},
		{"or one", `or: [{equals: {process.name: apache}}, {equals: {process.name: nginx}}]`, true},
		{"or none", `or: [{equals: {process.name: apache}}, {has_fields: [user]}]`, false},
		{"not", `not: {equals: {process.name: apache}}`, true},
		{"not matching", `not: {has_fields: [process]}`, false},
		{"nested", `not: {or: [{and: [{equals: {network.transport: tcp}}, {range: {destination.port.lt: 1024}}]}, {has_fields: [user]}]}`, false},
		{"operators in one mapping are anded", "equals: {process.name: nginx}\nrange: {destination.port.gt: 1000}", false},
		{"operators in one mapping all hold", "equals: {process.name: nginx}\nrange: {destination.port.lt: 1000}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(parse(t, tt.when))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.Check(event()); got != tt.want {
				t.Errorf("%s: Check = %v, want %v", c, got, tt.want)
			}
			if got := c.Check(objectEvent()); got != tt.want {
				t.Errorf("%s: Check on objects = %v, want %v", c, got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		when string
		want string
	}{
		{"unknown operator", "equals: {a: b}\nequal: {a: b}",
			`fleutanbeat.yml:2:1: processors.0.drop_event.when.equal: unknown condition "equal" (use one of equals, contains, regexp, range, network, has_fields, and, or, not)`},
		{"bad cidr", "network:\n  source:\n    ip: 10.0.0.0/33",
			`fleutanbeat.yml:3:9: processors.0.drop_event.when.network.source.ip: "10.0.0.0/33" is not a CIDR or a named range (loopback, private, ...)`},
		{"bad cidr dotted key", `network: {source.ip: 10.0.0.0/33}`,
			`fleutanbeat.yml:1:22: processors.0.drop_event.when.network.source.ip: "10.0.0.0/33" is not a CIDR or a named range (loopback, private, ...)`},
		{"bad named range in list", `network: {source.ip: [private, privat]}`,
			`fleutanbeat.yml:1:32: processors.0.drop_event.when.network.source.ip.1: "privat" is not a CIDR or a named range (loopback, private, ...)`},
		{"empty network list", `network: {source.ip: []}`,
			`fleutanbeat.yml:1:22: processors.0.drop_event.when.network.source.ip: expected a CIDR, a named range or a list of them, got an empty list`},
		{"bad regexp", `regexp: {process.name: "ngi(nx"}`,
			"fleutanbeat.yml:1:24: processors.0.drop_event.when.regexp.process.name: \"ngi(nx\" is not a valid regular expression: error parsing regexp: missing closing ): `ngi(nx`"},
		{"range non-number", "range:\n  source.bytes:\n    gte: lots",
			`fleutanbeat.yml:3:10: processors.0.drop_event.when.range.source.bytes.gte: "lots" is not a number`},
		{"range quoted number", `range: {source.bytes.gte: "10"}`,
			`fleutanbeat.yml:1:27: processors.0.drop_event.when.range.source.bytes.gte: "10" is not a number`},
		{"range list", `range: {source.bytes.gte: [1]}`,
			`fleutanbeat.yml:1:27: processors.0.drop_event.when.range.source.bytes.gte: a list is not a number`},
		{"range unknown operator", `range: {source.bytes.between: 1}`,
			`fleutanbeat.yml:1:31: processors.0.drop_event.when.range.source.bytes.between: unknown range operator "between" (write FIELD.gt, gte, lt or lte)`},
		{"range without field", `range: {gte: 1}`,
			`fleutanbeat.yml:1:14: processors.0.drop_event.when.range.gte: range needs a field name before "gte"`},
		{"equals list", `equals: {process.name: [a, b]}`,
			`fleutanbeat.yml:1:24: processors.0.drop_event.when.equals.process.name: expected a string, integer or boolean to compare with`},
		{"equals float", `equals: {x: 1.5}`,
			`fleutanbeat.yml:1:13: processors.0.drop_event.when.equals.x: "1.5" is not a string, integer or boolean (use range to compare numbers with fractions)`},
		{"equals null", `equals: {x: ~}`,
			`fleutanbeat.yml:1:13: processors.0.drop_event.when.equals.x: expected a string, integer or boolean to compare with`},
		{"equals not a mapping", `equals: nginx`,
			`fleutanbeat.yml:1:9: processors.0.drop_event.when.equals: expected a mapping of field names to values`},
		{"contains list", `contains: {a: [x]}`,
			`fleutanbeat.yml:1:15: processors.0.drop_event.when.contains.a: expected a string to look for, got a list`},
		{"has_fields scalar", `has_fields: process.name`,
			`fleutanbeat.yml:1:13: processors.0.drop_event.when.has_fields: expected a non-empty list of field names`},
		{"and not a list", `and: {equals: {a: b}}`,
			`fleutanbeat.yml:1:6: processors.0.drop_event.when.and: expected a non-empty list of conditions`},
		{"or element bad", `or: [{equals: {a: b}}, {eq: {a: b}}]`,
			`fleutanbeat.yml:1:25: processors.0.drop_event.when.or.1.eq: unknown condition "eq" (use one of equals, contains, regexp, range, network, has_fields, and, or, not)`},
		{"not empty", `not: {}`,
			`fleutanbeat.yml:1:6: processors.0.drop_event.when.not: empty condition (use one of equals, contains, regexp, range, network, has_fields, and, or, not)`},
		{"null when", `~`,
			`fleutanbeat.yml:1:1: processors.0.drop_event.when: missing condition (use one of equals, contains, regexp, range, network, has_fields, and, or, not)`},
		{"scalar when", `yes`,
			`fleutanbeat.yml:1:1: processors.0.drop_event.when: expected a mapping of condition operators, got a scalar`},
		{"errors are joined", "regexp: {a: \"(\"}\nrange: {b.gte: x}",
			"fleutanbeat.yml:1:13: processors.0.drop_event.when.regexp.a: \"(\" is not a valid regular expression: error parsing regexp: missing closing ): `(`\n" +
				`fleutanbeat.yml:2:16: processors.0.drop_event.when.range.b.gte: "x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(parse(t, tt.when))
			if err == nil {
				t.Fatalf("New succeeded with %s", c)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct{ when, want string }{
		{`equals: {process.name: nginx, destination.port: 443, flow.final: true}`, `equals(process.name: "nginx", destination.port: 443, flow.final: true)`},
		{`contains: {message: GET}`, `contains(message: "GET")`},
		{`regexp: {process.name: "^ng"}`, `regexp(process.name: ^ng)`},
		{`range: {source.bytes: {gte: 10, lt: 1.5e3}}`, `range(source.bytes.gte: 10, source.bytes.lt: 1500)`},
		{`network: {source.ip: [private, 10.0.0.0/8]}`, `network(source.ip: private | 10.0.0.0/8)`},
		{`has_fields: [a, b.c]`, `has_fields(a, b.c)`},
		{`or: [{not: {has_fields: [a]}}, {has_fields: [b]}]`, `or(not(has_fields(a)), has_fields(b))`},
		{"has_fields: [a]\nequals: {b: 1}", `and(has_fields(a), equals(b: 1))`},
	}
	for _, tt := range tests {
		c, err := New(parse(t, tt.when))
		if err != nil {
			t.Fatalf("%s: %v", tt.when, err)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

// TestCheckDoesNotAllocate guards the per-event cost: conditions walk the
// dotted path and compare precompiled values.
func TestCheckDoesNotAllocate(t *testing.T) {
	c, err := New(parse(t, `or: [{equals: {process.name: apache, source.ip: 10.1.2.3}}, {network: {destination.ip: private}}, {range: {fleutan.flow.tcp.rtt_us.gt: 1e6}}, {contains: {process.args: x}}, {regexp: {process.name: "^x"}}, {has_fields: [network.bytes, user.id]}, {range: {network.bytes.gt: 1e9}}, {equals: {network.bytes: 1}}]`))
	if err != nil {
		t.Fatal(err)
	}
	for name, ev := range map[string]pipeline.M{"maps": event(), "objects": objectEvent()} {
		if n := testing.AllocsPerRun(100, func() { c.Check(ev) }); n != 0 {
			t.Errorf("%s: Check allocates %v times per event, want 0", name, n)
		}
	}
}

func TestNamedRanges(t *testing.T) {
	tests := []struct {
		addr string
		in   []string
	}{
		{"127.0.0.1", []string{"loopback"}},
		{"::1", []string{"loopback"}},
		{"8.8.8.8", []string{"unicast", "public"}},
		{"10.0.0.1", []string{"unicast", "private"}},
		{"fd00::1", []string{"unicast", "private"}},
		{"224.0.0.251", []string{"multicast", "link_local_multicast"}},
		{"239.1.1.1", []string{"multicast", "public"}},
		{"ff01::1", []string{"multicast", "interface_local_multicast"}},
		{"169.254.1.1", []string{"link_local_unicast"}},
		{"fe80::1", []string{"link_local_unicast"}},
		{"0.0.0.0", []string{"unspecified"}},
		{"::", []string{"unspecified"}},
		{"255.255.255.255", nil},
	}
	for _, tt := range tests {
		var got []string
		a := netip.MustParseAddr(tt.addr)
		for _, nr := range namedRanges {
			if nr.fn(a) {
				got = append(got, nr.name)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.in, ",") {
			t.Errorf("%s is in %v, want %v", tt.addr, got, tt.in)
		}
	}
}

// FuzzNew builds conditions from arbitrary YAML: construction must fail
// cleanly or yield a condition that checks without panicking.
func FuzzNew(f *testing.F) {
	for _, s := range []string{
		`equals: {process.name: nginx}`,
		`range: {a: {gte: 1, lt: 2}}`,
		`network: {source.ip: [private, 10.0.0.0/8]}`,
		`or: [{not: {has_fields: [a]}}, {regexp: {b: "^x"}}]`,
		`and: [&x {contains: {a: b}}, *x]`,
		`equals: {a: 9223372036854775808}`,
		`network: {source.ip: 10.0.0.0/33}`,
		`~`, `[]`, `{}`,
	} {
		f.Add(s)
	}
	ev := event()
	f.Fuzz(func(t *testing.T, src string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(src), &doc) != nil || len(doc.Content) == 0 {
			return
		}
		c, err := New(config.NewRaw(doc.Content[0], "f.yml", "when"))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		c.Check(ev)
		_ = c.String()
	})
}

// TestNewAliasBomb checks that aliases multiplying a small file into a
// huge tree end in an error, not in minutes of work.
func TestNewAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 {x: 1}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "a%d: &a%d {l: *a%d, r: *a%d}\n", i, i, i-1, i-1)
	}
	b.WriteString("equals: *a40\n")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	// Only the equals key matters; the anchors' own keys are unknown
	// operators that also fail.
	root := doc.Content[0]
	root.Content = root.Content[len(root.Content)-2:]
	_, err := New(config.NewRaw(root, "f.yml", "when"))
	if err == nil || !strings.Contains(err.Error(), "condition too large (more than 100000 YAML nodes after expanding aliases)") {
		t.Fatalf("error = %v", err)
	}
}
