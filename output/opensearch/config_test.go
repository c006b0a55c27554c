package opensearch

import (
	"os"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"gopkg.in/yaml.v3"
)

// TestConfigKeysAreElasticsearchsButAPIKey decodes output.opensearch
// sections: the keys of output.elasticsearch, with api_key refused since
// OpenSearch has no such keys.
func TestConfigKeysAreElasticsearchsButAPIKey(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string
	}{
		{"hosts and options", "hosts: [\"https://os1:9200\", \"os2\"]\nworker: 2\nusername: u\npassword: p\nnon_indexable_policy: {dead_letter_index: {index: dlq}}\n", ""},
		{"api_key", "hosts: [os]\napi_key: \"id:key\"\n", "api_key: OpenSearch has no API keys"},
		{"unknown key", "hosts: [os]\ncloud.id: x\n", "cloud"},
		{"bad worker", "worker: 0\n", "worker: 0 is out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			c, err := DecodeWithSetup(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.opensearch"), config.Raw{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Engine != Engine || c.Worker != 2 || len(c.Hosts) != 2 {
					t.Fatalf("decoded %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestShippedConfigBlockDecodes uncomments the output.opensearch block of
// the shipped fleutanbeat.yml and decodes it: the reference file's keys
// and values stay valid.
func TestShippedConfigBlockDecodes(t *testing.T) {
	b, err := os.ReadFile("../../fleutanbeat.yml")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if l == "#output.opensearch:" {
			in = true
			continue
		}
		if in && !strings.HasPrefix(l, "#  ") {
			break
		}
		if in {
			block = append(block, strings.TrimPrefix(l, "#  "))
		}
	}
	if len(block) < 10 {
		t.Fatalf("no output.opensearch block in fleutanbeat.yml (%d lines)", len(block))
	}
	// Through the loader, which expands dotted keys and ${VAR}s as for
	// the real file.
	path := t.TempDir() + "/fleutanbeat.yml"
	if err := os.WriteFile(path, []byte("output.opensearch:\n  "+strings.Join(block, "\n  ")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := config.Load(config.LoadOptions{Path: path, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := root.Child("output")
	sec, ok := out.Child("opensearch")
	if !ok {
		t.Fatal("no output.opensearch section")
	}
	// The enabled key is the loader's; the output never sees it.
	c, err := DecodeWithSetup(sec.Without("enabled"), config.Raw{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine != Engine || c.Hosts[0] != "http://localhost:9200" || c.BulkMaxSize != 1600 {
		t.Fatalf("decoded %+v", c)
	}
}

// TestTemplatesHaveNoTimeSeriesSettings: OpenSearch refuses index.mode and
// the time_series_* mapping parameters as unknown, so its templates are
// the standard ones whatever setup.template.index_mode says, while
// Elasticsearch's default templates carry them.
func TestTemplatesHaveNoTimeSeriesSettings(t *testing.T) {
	for _, mode := range []string{"", "time_series", "standard"} {
		setup := config.Raw{}
		if mode != "" {
			setup = yamlRaw(t, "template:\n  index_mode: "+mode+"\n", "setup")
		}
		c, err := DecodeWithSetup(yamlRaw(t, "hosts: [\"http://127.0.0.1:9200\"]\n", "output.opensearch"), setup)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := elasticsearch.ExportTemplates(&b, c); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "time_series") {
			t.Errorf("index_mode %q: OpenSearch templates mention time_series", mode)
		}
		es := c
		es.Engine = elasticsearch.Elasticsearch
		b.Reset()
		if err := elasticsearch.ExportTemplates(&b, es); err != nil {
			t.Fatal(err)
		}
		if want := mode != "standard"; strings.Contains(b.String(), `"mode": "time_series"`) != want {
			t.Errorf("index_mode %q: Elasticsearch templates with index.mode time_series: %v, want %v", mode, !want, want)
		}
	}
}

func yamlRaw(t *testing.T, text, path string) config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return config.NewRaw(doc.Content[0], "fleutanbeat.yml", path)
}
