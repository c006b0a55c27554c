package flowsinput

import (
	"github.com/fleutan/fleutanbeat/input/flows"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{
		Period:          config.Duration(10 * time.Second),
		Protocols:       []string{"tcp", "udp"},
		Families:        []string{"ipv4", "ipv6"},
		States:          []string{"established", "listening"},
		IncludeLoopback: true,
		Namespaces:      "host",
		MaxFlows:        100000,
		Method:          "auto",

		MaxTrackedConnections: 65536,
		Report:                "active",
		Heartbeat:             30,
		Rollup:                true,
		Routes:                true,
		RouteTTL:              config.Duration(time.Minute),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	o := c.collectorOptions(input.Settings{ProcRoot: "/proc"})
	if !reflect.DeepEqual(o.Protocols, []uint8{flows.ProtocolTCP, flows.ProtocolUDP}) || !reflect.DeepEqual(o.Families, []uint8{flows.FamilyIPv4, flows.FamilyIPv6}) ||
		o.States != 1<<stateEstablished|1<<stateListen || o.AllNamespaces || !o.Routes || o.RouteTTL != time.Minute {
		t.Errorf("collector options of the defaults: %+v", o)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"zero period", func(c *Config) { c.Period = 0 }, "period: must be positive, got 0s"},
		{"no protocols", func(c *Config) { c.Protocols = nil }, "protocols: must name at least one protocol (tcp, udp)"},
		{"bad protocol", func(c *Config) { c.Protocols = []string{"tcp", "sctp"} }, `protocols.1: "sctp" is not a protocol (use tcp or udp)`},
		{"no families", func(c *Config) { c.Families = []string{} }, "families: must name at least one family (ipv4, ipv6)"},
		{"bad family", func(c *Config) { c.Families = []string{"inet"} }, `families.0: "inet" is not an address family (use ipv4 or ipv6)`},
		{"no states", func(c *Config) { c.States = nil }, "states: must name at least one state (established, listening, all, ...)"},
		{"bad state", func(c *Config) { c.States = []string{"listening", "open"} }, `states.1: "open" is not a socket state (use an ss state name such as established, listening, time-wait, or a group: all, connected, synchronized, bucket, big)`},
		{"bad include cidr", func(c *Config) { c.CIDRs.Include = []string{"10.0.0.0/33"} }, `cidrs.include.0: "10.0.0.0/33" is not a CIDR (use an address with an optional prefix length: 10.0.0.0/8, fd00::/8, 192.0.2.1)`},
		{"bad exclude cidr", func(c *Config) { c.CIDRs.Exclude = []string{"10.0.0.0/8", "nope"} }, `cidrs.exclude.1: "nope" is not a CIDR (use an address with an optional prefix length: 10.0.0.0/8, fd00::/8, 192.0.2.1)`},
		{"port too big", func(c *Config) { c.Ports.Include = []string{"65536"} }, `ports.include.0: "65536" is not a port or port range (use 443 or 8000-8100, ports 0 to 65535)`},
		{"reversed range", func(c *Config) { c.Ports.Exclude = []string{"22", "90-80"} }, `ports.exclude.1: "90-80" is not a port or port range (use 443 or 8000-8100, ports 0 to 65535)`},
		{"zero route ttl", func(c *Config) { c.RouteTTL = 0 }, "route_ttl: must be positive, got 0s"},
		{"bad regexp", func(c *Config) { c.Processes = []string{"ngin(x"} }, `processes.0: "ngin(x" is not a regular expression: missing closing )`},
		{"bad namespaces", func(c *Config) { c.Namespaces = "some" }, `namespaces: "some" is not a namespace selection (use host or all)`},
		{"zero max_flows", func(c *Config) { c.MaxFlows = 0 }, "max_flows: must be positive, got 0"},
		{"bad method", func(c *Config) { c.Method = "kprobe" }, `method: "kprobe" is not a method (use auto, ebpf or procfs)`},
		{"tiny map", func(c *Config) { c.MaxTrackedConnections = 10 }, "max_tracked_connections: must be between 1024 and 4194304, got 10"},
		{"bad report", func(c *Config) { c.Report = "changed" }, `report: "changed" is not a report mode (use active or all)`},
		{"zero heartbeat", func(c *Config) { c.Heartbeat = 0 }, "heartbeat: must be at least 1 period, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestConfigStatesAcceptSSNames(t *testing.T) {
	tests := []struct {
		states []string
		want   uint32
	}{
		{[]string{"established"}, 1 << stateEstablished},
		{[]string{"fin-wait-1", "fin_wait2", "TIME-WAIT"}, 1<<stateFinWait1 | 1<<stateFinWait2 | 1<<stateTimeWait},
		{[]string{"listen", "close"}, 1<<stateListen | 1<<stateClose},
		{[]string{"all"}, 0}, // 0 asks the kernel for every state
		{[]string{"connected"}, flows.AllStates &^ (1<<stateListen | 1<<stateClose)},
		{[]string{"bucket"}, 1<<stateSynRecv | 1<<stateTimeWait},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.States = tt.states
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", tt.states, err)
			continue
		}
		if got := c.collectorOptions(input.Settings{}).States; got != tt.want {
			t.Errorf("%v: mask %#x, want %#x", tt.states, got, tt.want)
		}
	}
}

func TestNewReportsPositionedErrors(t *testing.T) {
	src := "period: 5s\nprotocols: [tcp, icmp]\nmax_flows: 10\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	raw := config.NewRaw(doc.Content[0], "fleutanbeat.yml", "fleutanbeat.inputs.0")
	_, err := New(raw, input.Settings{})
	want := `fleutanbeat.yml:2:18: fleutanbeat.inputs.0.protocols.1: "icmp" is not a protocol (use tcp or udp)`
	if err == nil || err.Error() != want {
		t.Errorf("New() = %v\nwant %s", err, want)
	}
	if err != nil && !strings.Contains(err.Error(), "icmp") {
		t.Errorf("error does not name the value: %v", err)
	}
}
