package qdiscinput

import (
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
		Period:           config.Duration(10 * time.Second),
		Namespaces:       "host",
		FlowAttribution:  "auto",
		TopFlowsPerQueue: 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"zero period", func(c *Config) { c.Period = 0 }, "period: must be positive, got 0s"},
		{"bad pattern", func(c *Config) { c.Devices = []string{"eth0", "veth["} }, `devices.1: "veth[" is not a device name or shell pattern (use eth0, veth*, enp[0-9]s*)`},
		{"empty device", func(c *Config) { c.Devices = []string{""} }, `devices.0: "" is not a device name or shell pattern (use eth0, veth*, enp[0-9]s*)`},
		{"bad namespaces", func(c *Config) { c.Namespaces = "some" }, `namespaces: "some" is not a namespace selection (use host or all)`},
		{"bad attribution", func(c *Config) { c.FlowAttribution = "kprobe" }, `flow_attribution: "kprobe" is not an attribution mode (use auto, ebpf or off)`},
		{"zero top flows", func(c *Config) { c.TopFlowsPerQueue = 0 }, "top_flows_per_queue: must be positive, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMatchDevice(t *testing.T) {
	tests := []struct {
		devices  []string
		name     string
		loopback bool
		want     bool
	}{
		{nil, "eth0", false, true},
		{nil, "lo", true, false},
		{[]string{"veth*"}, "veth12", false, true},
		{[]string{"veth*"}, "eth0", false, false},
		{[]string{"lo"}, "lo", true, true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Devices = tt.devices
		if got := c.matchDevice(tt.name, tt.loopback); got != tt.want {
			t.Errorf("devices %v: matchDevice(%q, %v) = %v, want %v", tt.devices, tt.name, tt.loopback, got, tt.want)
		}
	}
}

func TestNewRejectsUnknownKeysWithPosition(t *testing.T) {
	src := "period: 5s\ntop_flows: 3\n"
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	_, err := New(config.NewRaw(n.Content[0], "fleutanbeat.yml", "fleutanbeat.inputs.0"), input.Settings{})
	if err == nil || !strings.Contains(err.Error(), "fleutanbeat.yml:2:1") || !strings.Contains(err.Error(), "top_flows") {
		t.Errorf("New() = %v, want an error at fleutanbeat.yml:2:1 naming top_flows", err)
	}
	if err := yaml.Unmarshal([]byte("flow_attribution: sometimes\n"), &n); err != nil {
		t.Fatal(err)
	}
	_, err = New(config.NewRaw(n.Content[0], "fleutanbeat.yml", "fleutanbeat.inputs.0"), input.Settings{})
	if err == nil || !strings.Contains(err.Error(), "flow_attribution") || !strings.Contains(err.Error(), "fleutanbeat.yml:1:") {
		t.Errorf("New() = %v, want a positioned flow_attribution error", err)
	}
}
