package elasticsearch

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

func decodeSection(t *testing.T, src string) (Config, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return DecodeConfig(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.elasticsearch"))
}

func TestConfigDecodesBeatsKeys(t *testing.T) {
	c, err := decodeSection(t, `
hosts: ["es1:9200", "https://es2:9243"]
worker: 2
bulk_max_size: 800
compression_level: 0
timeout: 30s
api_key: "abc:def"
headers: {X-Test: "1"}
namespace: prod
mode: index
index: "fleutan-%{[event.dataset]}-%{+yyyy.MM}"
ssl: {verification_mode: certificate}
non_indexable_policy:
  dead_letter_index:
    index: fleutan-dlq
backoff: {init: 2s, max: 30s}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker != 2 || c.BulkMaxSize != 800 || c.CompressionLevel != 0 || c.Timeout.D() != 30*time.Second ||
		c.Namespace != "prod" || c.Mode != ModeIndex || c.SSL.VerificationMode != "certificate" ||
		c.NonIndexablePolicy != (NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: "fleutan-dlq"}) ||
		c.Backoff.Init.D() != 2*time.Second || c.Headers["X-Test"] != "1" {
		t.Fatalf("decoded %+v", c)
	}
}

func TestConfigDefaultsAreBeats(t *testing.T) {
	c := DefaultConfig()
	if c.BulkMaxSize != 1600 || c.Timeout.D() != 90*time.Second || c.Backoff.Init.D() != time.Second ||
		c.Backoff.Max.D() != time.Minute || c.SSL.VerificationMode != "full" || c.Namespace != "default" ||
		c.Mode != ModeDataStream || !c.Template.Enabled || c.Template.Priority != 150 {
		t.Fatalf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejectsBadValuesWithKeys(t *testing.T) {
	cases := []struct {
		yaml string
		want string
	}{
		{"hosts: []", "hosts: must list at least one host"},
		{"hosts: ['ftp://x']", "hosts.0:"},
		{"worker: 0", "worker: 0 is out of range"},
		{"bulk_max_size: 0", "bulk_max_size:"},
		{"compression_level: 10", "compression_level:"},
		{"username: a", "password: username and password go together"},
		{"api_key: nocolon", "api_key: must be id:key"},
		{"ssl: {verification_mode: strictest}", `ssl.verification_mode: "strictest" is not one of full, strict, certificate, none`},
		{"ssl: {certificate: c.pem}", "ssl.certificate: certificate and key must be set together"},
		{"ssl: {supported_protocols: [SSLv3]}", `ssl.supported_protocols.0: "SSLv3" is not supported`},
		{"namespace: Prod", "namespace:"},
		{"namespace: a-b", "namespace:"},
		{"mode: bulk", "mode:"},
		{"mode: index\nindex: 'x-%{oops}'", "index:"},
		{"mode: index\nindex: 'x-%{+yyyy.Q}'", "index:"},
		{"non_indexable_policy: {dead_letter_index: {index: ''}}", "non_indexable_policy.dead_letter_index.index"},
		{"non_indexable_policy: {keep: ~}", "unknown policy"},
		{"backoff: {init: 10s, max: 1s}", "backoff.max:"},
		{"proxy_url: '::'", "proxy_url:"},
		{"unknown_key: 1", "unknown_key"},
	}
	for _, tc := range cases {
		t.Run(tc.yaml, func(t *testing.T) {
			_, err := decodeSection(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestIndexPatternRendersEventValues(t *testing.T) {
	e := pipeline.Event{Timestamp: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), Fields: pipeline.M{}}
	e.Fields.Put("event.dataset", "fleutan.Flows")
	e.Fields.Put("host.name", "web-1")
	cases := []struct {
		pattern, want, wild, err string
	}{
		{DefaultIndex, "fleutan-fleutan.flows-2026.03.04", "fleutan-fleutan.flows-*", ""},
		{"a-%{[host][name]}-%{+yyyy.MM.dd.HH}", "a-web-1-2026.03.04.05", "a-*", ""},
		{"plain", "plain", "plain*", ""},
		{"a-%{[missing]}", "", "a-*", "event has no field missing"},
	}
	for _, tc := range cases {
		p, err := parsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		got, err := p.render(nil, &e)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%s: error %v, want %q", tc.pattern, err, tc.err)
			}
		} else if err != nil || string(got) != tc.want {
			t.Fatalf("%s: %q %v, want %q", tc.pattern, got, err, tc.want)
		}
		if w := p.wildcard("fleutan.flows"); w != tc.wild {
			t.Fatalf("%s: wildcard %q, want %q", tc.pattern, w, tc.wild)
		}
	}
}

func TestParseBulkReply(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		n     int
		want  []itemResult
		error string
	}{
		{"no errors", `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`, 2, nil, ""},
		{"no errors, items filtered away", `{"errors":false}`, 2, nil, ""},
		{"mixed", `{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"bad"}}}]}`, 3,
			[]itemResult{{Status: 201}, {Status: 409, Type: "version_conflict_engine_exception", Reason: "exists"}, {Status: 400, Type: "document_parsing_exception", Reason: "bad"}}, ""},
		{"string error", `{"errors":true,"items":[{"index":{"status":400,"error":"MapperParsingException"}}]}`, 1, []itemResult{{Status: 400, Reason: "MapperParsingException"}}, ""},
		{"short", `{"errors":true,"items":[{"create":{"status":201}}]}`, 2, nil, "1 items for 2 actions"},
		{"no status", `{"errors":true,"items":[{"create":{}}]}`, 1, nil, "status 0"},
		{"two actions in an item", `{"errors":true,"items":[{"create":{"status":201},"index":{"status":201}}]}`, 1, nil, "not {action"},
		{"not json", `<html>`, 1, nil, "bad bulk reply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBulkReply([]byte(tc.body), tc.n)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error %v, want %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("item %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func FuzzParseBulkReply(f *testing.F) {
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429,"error":{"type":"x","reason":"y"}}}]}`), 1)
	f.Add([]byte(`{"errors":false}`), 3)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		items, err := parseBulkReply(body, n)
		if err == nil && items != nil && len(items) != n {
			t.Fatalf("%d items for %d actions without an error", len(items), n)
		}
	})
}

func FuzzParsePattern(f *testing.F) {
	f.Add(DefaultIndex)
	f.Add("x-%{[a][b]}-%{+yyyy}")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePattern(s)
		if err != nil {
			return
		}
		e := pipeline.Event{Fields: pipeline.M{"event": pipeline.M{"dataset": "d"}}}
		if name, err := p.render(nil, &e); err == nil {
			if checkIndexName(string(name)) != nil {
				t.Fatalf("rendered invalid index name %q", name)
			}
		}
	})
}

// TestTemplatesGolden compares the exported templates with the golden file
// (regenerate with -update).
func TestTemplatesMatchGolden(t *testing.T) {
	var buf bytes.Buffer
	c := DefaultConfig()
	c.NonIndexablePolicy = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: "fleutan-dead-letter"}
	if err := ExportTemplates(&buf, c); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/templates_data_stream.txt", buf.Bytes())
}

func TestTemplatesPerMode(t *testing.T) {
	cases := []struct {
		name         string
		mode, index  string
		wantPatterns map[string]string
		dataStream   bool
	}{
		{"data stream", ModeDataStream, "", map[string]string{"metrics-fleutan.flows": "metrics-fleutan.flows-*", "metrics-fleutan.cpu": "metrics-fleutan.cpu-*", "metrics-fleutan.qdisc": "metrics-fleutan.qdisc-*", "metrics-fleutan.paths": "metrics-fleutan.paths-*", "metrics-fleutan.rdma": "metrics-fleutan.rdma-*"}, true},
		{"index per dataset", ModeIndex, DefaultIndex, map[string]string{"fleutan-index-fleutan.flows": "fleutan-fleutan.flows-*", "fleutan-index-fleutan.cpu": "fleutan-fleutan.cpu-*", "fleutan-index-fleutan.qdisc": "fleutan-fleutan.qdisc-*", "fleutan-index-fleutan.paths": "fleutan-fleutan.paths-*", "fleutan-index-fleutan.rdma": "fleutan-fleutan.rdma-*"}, false},
		{"index without dataset", ModeIndex, "fleutan-%{+yyyy.MM.dd}", map[string]string{"fleutan-index": "fleutan-*"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Mode = tc.mode
			if tc.index != "" {
				c.Index = tc.index
			}
			ts, err := Templates(c)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, tm := range ts {
				if tm.Kind != KindIndex {
					continue
				}
				got[tm.Name] = tm.Body["index_patterns"].([]string)[0]
				if _, ok := tm.Body["data_stream"]; ok != tc.dataStream {
					t.Errorf("%s: data_stream present %v, want %v", tm.Name, ok, tc.dataStream)
				}
				if p := tm.Body["priority"].(int); p <= 100 {
					t.Errorf("%s: priority %d must beat the built-in metrics template (100)", tm.Name, p)
				}
			}
			if len(got) != len(tc.wantPatterns) {
				t.Fatalf("index templates %v, want %v", got, tc.wantPatterns)
			}
			for k, v := range tc.wantPatterns {
				if got[k] != v {
					t.Errorf("%s: pattern %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestTemplatesUseOnlyServerTypes guards against types that live in
// modules the minimal distribution lacks.
func TestTemplatesUseOnlyServerTypes(t *testing.T) {
	ts, err := Templates(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ts)
	for _, bad := range []string{"constant_keyword", "scaled_float", "match_only_text", "wildcard", "unsigned_long", "flattened"} {
		if bytes.Contains(b, []byte(`"`+bad+`"`)) {
			t.Errorf("templates use %s, which the server itself does not provide", bad)
		}
	}
}

// TestReadmeExampleIsValid keeps the README's configuration honest.
func TestReadmeExampleIsValid(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "```yaml\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README.md has no yaml example")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s[start+8:start+8+end]), &doc); err != nil {
		t.Fatal(err)
	}
	root := config.NewRaw(doc.Content[0], "README.md", "")
	out, ok := root.Child("output.elasticsearch")
	if !ok {
		t.Fatal("no output.elasticsearch in the example")
	}
	c, err := DecodeConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := root.Child("setup.template")
	if !ok {
		t.Fatal("no setup.template in the example")
	}
	if c.Template, err = DecodeTemplateConfig(tmpl); err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts) != 2 || c.Template.Priority != 150 {
		t.Fatalf("decoded %+v", c)
	}
}

// TestTemplatesIndexMode checks which index templates make time series
// data streams under each setup.template.index_mode.
func TestTemplatesIndexMode(t *testing.T) {
	cases := []struct {
		name, mode, indexMode string
		want                  []string // datasets with index.mode time_series
	}{
		{"default", ModeDataStream, "", []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"}},
		{"time_series", ModeDataStream, IndexModeTimeSeries, []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"}},
		{"standard", ModeDataStream, IndexModeStandard, nil},
		{"classic indices", ModeIndex, IndexModeTimeSeries, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Mode = tc.mode
			if tc.indexMode != "" {
				c.Template.IndexMode = tc.indexMode
			}
			ts, err := Templates(c)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tm := range ts {
				tmpl, ok := tm.Body["template"].(map[string]any)
				if tm.Kind != KindIndex || !ok {
					continue
				}
				idx := tmpl["settings"].(map[string]any)["index"].(map[string]any)
				if idx["mode"] != IndexModeTimeSeries || !reflect.DeepEqual(idx["routing_path"], []string{"agent.id"}) {
					t.Errorf("%s: settings %v", tm.Name, idx)
				}
				got = append(got, tm.Body["_meta"].(map[string]any)["dataset"].(string))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("time series data streams of %v, want %v", got, tc.want)
			}
		})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("index_mode: tsdb\n"), &doc); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeTemplateConfig(config.NewRaw(doc.Content[0], "f.yml", "setup.template"))
	if err == nil || !strings.Contains(err.Error(), "setup.template.index_mode") || !strings.Contains(err.Error(), `"tsdb" is not an index mode`) {
		t.Errorf("index_mode: tsdb: %v", err)
	}
}
