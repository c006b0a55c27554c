package logstash

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"gopkg.in/yaml.v3"
)

func decodeYAML(yml string, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(yml), &doc); err != nil {
		return err
	}
	return config.NewRaw(doc.Content[0], "test.yml", "output.logstash").Decode(c)
}

func outputSettings() output.Settings {
	return output.Settings{Logger: slog.New(slog.DiscardHandler), Beat: "fleutanbeat", Version: "9.9.9"}
}

func TestDefaultConfigIsBeats(t *testing.T) {
	c := DefaultConfig()
	if c.Worker != 1 || c.BulkMaxSize != 2048 || c.Pipelining != 2 || c.SlowStart || c.CompressionLevel != 3 ||
		c.Timeout.D() != 30*time.Second || c.TTL != 0 || c.Backoff.Init.D() != time.Second ||
		c.Backoff.Max.D() != time.Minute || c.LoadBalance || c.SSL.IsEnabled() {
		t.Fatalf("defaults differ from Beats: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		yml  string
		want []string // substrings of the error, in order; none: valid
	}{
		{"minimal", "hosts: [localhost]", nil},
		{"full", `hosts: ["ls1:5045", "10.0.0.1", "[::1]:5044", "fe80::1"]
loadbalance: true
worker: 4
bulk_max_size: 512
pipelining: 0
slow_start: true
compression_level: 0
timeout: 5s
ttl: 1m
backoff: {init: 100ms, max: 10s}
index: custom
proxy_url: socks5://user:secret@proxy:1080
ssl: {enabled: true, verification_mode: certificate, supported_protocols: [TLSv1.3]}`, nil},
		{"no hosts", "worker: 1", []string{"hosts: at least one host is required"}},
		{"bad values", `hosts: ["http://ls:5044", "ls:0", "ls", "ls:5044"]
worker: 0
bulk_max_size: 0
pipelining: -1
compression_level: 10
timeout: 0s
ttl: -1s
backoff: {init: 2s, max: 1s}
proxy_url: http://proxy:3128
ssl: {verification_mode: strictest, certificate: a.pem, supported_protocols: [SSLv3]}`, []string{
			`hosts.0: "http://ls:5044": give host:port without a scheme`,
			`hosts.1: "ls:0": port "0" is not a number in 1..65535`,
			`hosts.3: "ls:5044" is listed twice`,
			"worker: must be at least 1, got 0",
			"bulk_max_size: must be at least 1, got 0",
			"pipelining: must not be negative, got -1",
			"compression_level: 10 is out of range [0, 9]",
			"timeout: must be positive",
			"ttl: must not be negative",
			"backoff.max: 1s is less than backoff.init (2s)",
			`proxy_url: scheme "http" is not supported`,
			`ssl.verification_mode: "strictest" is not one of full, strict, certificate, none`,
			"ssl.certificate: certificate and key must be set together",
			`ssl.supported_protocols.0: "SSLv3" is not supported`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if err := decodeYAML(tc.yml, &c); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestNewRejectsUnknownKeysWithPosition(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("hosts: [ls]\nbulk_max_siz: 10\nworker: 0\n"), &doc); err != nil {
		t.Fatal(err)
	}
	_, err := New(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.logstash"), outputSettings())
	if err == nil || !strings.Contains(err.Error(), "fleutanbeat.yml:2:1: output.logstash.bulk_max_siz: unknown key") {
		t.Fatalf("err = %v", err)
	}
	if err := yaml.Unmarshal([]byte("hosts: [ls]\nworker: 0\n"), &doc); err != nil {
		t.Fatal(err)
	}
	_, err = New(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.logstash"), outputSettings())
	if err == nil || !strings.Contains(err.Error(), "fleutanbeat.yml:2:9: output.logstash.worker: must be at least 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostPortDefaultsTo5044(t *testing.T) {
	for in, want := range map[string]string{
		"localhost":      "localhost:5044",
		"ls:5045":        "ls:5045",
		"10.1.2.3":       "10.1.2.3:5044",
		"[::1]:5000":     "[::1]:5000",
		"fe80::1":        "[fe80::1]:5044",
		"logstash.local": "logstash.local:5044",
	} {
		got, err := hostPort(in)
		if err != nil || got != want {
			t.Errorf("hostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestGroupShape(t *testing.T) {
	for _, tc := range []struct {
		yml                string
		clients, hostsEach int
		batchSize          int
	}{
		{"hosts: [a, b]\nworker: 3\nloadbalance: true\nbulk_max_size: 100", 6, 1, 100},
		{"hosts: [a, b]\nworker: 3", 6, 2, 2048},
		{"hosts: [a]", 1, 1, 2048},
	} {
		c := DefaultConfig()
		if err := decodeYAML(tc.yml, &c); err != nil {
			t.Fatal(err)
		}
		g, err := newGroup(c, outputSettings())
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Clients) != tc.clients || g.BatchSize != tc.batchSize {
			t.Fatalf("%q: %d clients, batch %d; want %d, %d", tc.yml, len(g.Clients), g.BatchSize, tc.clients, tc.batchSize)
		}
		for i, cl := range g.Clients {
			if n := len(cl.(*client).hosts); n != tc.hostsEach {
				t.Fatalf("%q: client %d knows %d hosts, want %d", tc.yml, i, n, tc.hostsEach)
			}
		}
	}
}

// TestREADMEConfigParses keeps the documented example valid.
func TestREADMEConfigParses(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	yml, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no yaml block")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(yml), &doc); err != nil {
		t.Fatal(err)
	}
	sec, ok := config.NewRaw(doc.Content[0], "README.md", "").Child("output.logstash")
	if !ok {
		t.Fatal("README example has no output.logstash section")
	}
	c := DefaultConfig()
	if err := sec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
