package flowsinput

import (
	"github.com/fleutan/fleutanbeat/input/flows"
	"net/netip"
	"testing"

	"github.com/fleutan/fleutanbeat/input/internal/procindex"
)

func TestFilterOptions(t *testing.T) {
	nginx := &procindex.Process{PID: 10, Name: "nginx"}
	exporter := &procindex.Process{PID: 11, Name: "nginx-exporter"}
	flow := func(local, remote string, dir flows.Direction, p *procindex.Process) flows.Flow {
		return flows.Flow{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), Direction: dir, Process: p}
	}
	var (
		loop     = flow("127.0.0.1:40000", "127.0.0.1:80", flows.Outbound, nginx)
		loop6    = flow("[::1]:40000", "[::1]:80", flows.Outbound, nil)
		mapped   = flow("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:40000", flows.Inbound, nil)
		web      = flow("10.1.0.2:443", "192.0.2.7:50000", flows.Inbound, nginx)
		web6     = flow("[2001:db8::2]:443", "[2001:db8:1::9]:50000", flows.Inbound, exporter)
		listenIn = flow("10.1.0.2:8080", "0.0.0.0:0", flows.Listening, nil)
		all      = []flows.Flow{loop, loop6, mapped, web, web6, listenIn}
	)
	tests := []struct {
		name   string
		modify func(*Config)
		want   []bool // per flow of all
	}{
		{"defaults keep everything", func(*Config) {}, []bool{true, true, true, true, true, true}},
		{"include_loopback false", func(c *Config) { c.IncludeLoopback = false }, []bool{false, false, false, true, true, true}},
		{"cidrs.include matches the remote, the local one for listeners", func(c *Config) { c.CIDRs.Include = []string{"192.0.2.0/24", "10.1.0.0/16"} },
			[]bool{false, false, false, true, false, true}},
		{"cidrs.include a single address", func(c *Config) { c.CIDRs.Include = []string{"2001:db8:1::9"} }, []bool{false, false, false, false, true, false}},
		{"cidrs.exclude", func(c *Config) { c.CIDRs.Exclude = []string{"127.0.0.0/8", "::1/128"} }, []bool{false, false, false, true, true, true}},
		{"ports.include either port", func(c *Config) { c.Ports.Include = []string{"80"} }, []bool{true, true, true, false, false, false}},
		{"ports.include a range", func(c *Config) { c.Ports.Include = []string{"8000-9000", "49999-50000"} }, []bool{false, false, false, true, true, true}},
		{"ports.exclude either port", func(c *Config) { c.Ports.Exclude = []string{"443", "40000"} }, []bool{false, false, false, false, false, true}},
		{"ports never match port 0", func(c *Config) { c.Ports.Include = []string{"0-10"} }, []bool{false, false, false, false, false, false}},
		{"processes match the whole name", func(c *Config) { c.Processes = []string{"nginx"} }, []bool{true, false, false, true, false, false}},
		{"processes regexp", func(c *Config) { c.Processes = []string{"nginx.*"} }, []bool{true, false, false, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			f, err := newFilter(&c)
			if err != nil {
				t.Fatal(err)
			}
			for i := range all {
				if got := f.Keep(&all[i]); got != tt.want[i] {
					t.Errorf("flow %d %s -> %s: keep %v, want %v", i, all[i].Local, all[i].Remote, got, tt.want[i])
				}
			}
		})
	}
}
