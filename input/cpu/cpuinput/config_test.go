package cpuinput

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Period.D().String() != "10s" || c.SampleInterval.D().String() != "100ms" || c.Processes != "network" || c.Method != "auto" {
		t.Errorf("defaults changed: %+v", c)
	}
}

func TestNewRejectsBadOptionsWithPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "perod: 1s\n", []string{"test.yml:1:1", "perod"}},
		{"bad method", "method: kprobe\n", []string{"test.yml:1:9", `method: "kprobe" is not a method (use auto, ebpf or sampling)`}},
		{"bad selection", "processes: some\n", []string{"test.yml:1:12", `"some" is not a process selection`}},
		{"negative min_pct", "min_pct: -1\n", []string{"test.yml:1:10", "min_pct: must be a fraction of one core (0.05 = 5%), 0 or more"}},
		{"zero period", "period: 0s\n", []string{"period: must be positive"}},
		{"sample too fast", "sample_interval: 1ms\n", []string{"sample_interval: must be at least 10ms"}},
		{"sample above period", "period: 1s\nsample_interval: 2s\n", []string{"test.yml:2:18", "must not exceed period (1s)"}},
		{"two errors", "method: x\nprocesses: y\n", []string{"method:", "processes:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.src), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewAcceptsEveryOption(t *testing.T) {
	var doc yaml.Node
	src := "period: 5s\nprocesses: all\nmin_pct: 2.5\nmethod: sampling\nsample_interval: 50ms\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	in, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if in == nil {
		t.Fatal("nil input")
	}
}
