package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/output/opensearch/ostest"
)

// TestOpenSearchCommands: setup, test output and export template with
// output.opensearch against each real OpenSearch, and test output
// against the other product in both directions: exit 1 at once with the
// message naming the output to use.
func TestOpenSearchCommands(t *testing.T) {
	esURL := estest.URL(t)
	servers := ostest.Servers(t)
	cfg := shippedConfig(t)
	cli := func(args ...string) (int, string, string) {
		full := append(args, "-c", cfg, "--path.home", t.TempDir(), "-E", "output.file.enabled=false")
		var stdout, stderr bytes.Buffer
		code := Main(full, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, srv := range servers {
		hosts := "output.opensearch.hosts=[" + srv.URL + "]"
		tests := []struct {
			name   string
			args   []string
			code   int
			stdout string
			stderr string
		}{
			{"setup", []string{"setup", "--index-management", "-E", hosts}, 0, "Index templates installed in OpenSearch", ""},
			{"setup again is idempotent", []string{"setup", "--index-management", "-E", hosts}, 0, "Index templates installed in OpenSearch", ""},
			{"test output", []string{"test", "output", "-E", hosts}, 0, "version: " + srv.Version + "\n", ""},
			{"export template", []string{"export", "template", "-E", hosts}, 0, "PUT /_index_template/metrics-fleutan.flows\n", ""},
			{"test output, Elasticsearch configured as OpenSearch", []string{"test", "output", "-E", "output.opensearch.hosts=[" + esURL + "]"},
				1, "", "is Elasticsearch, not OpenSearch (it answers with X-Elastic-Product: Elasticsearch); use output.elasticsearch instead of output.opensearch"},
			{"test output, OpenSearch configured as Elasticsearch", []string{"test", "output", "-E", "output.elasticsearch.hosts=[" + srv.URL + "]"},
				1, "", "is not Elasticsearch (its answers carry no X-Elastic-Product header); for OpenSearch use output.opensearch instead of output.elasticsearch"},
			{"setup --dashboards refuses the Kibana bundle", []string{"setup", "--dashboards", "-E", hosts},
				1, "", "setup --dashboards: the Kibana saved objects do not import into OpenSearch Dashboards; import the index patterns and saved searches of kibana/opensearch/fleutan.ndjson"},
			{"setup without flags installs templates and skips dashboards", []string{"setup", "-E", hosts},
				0, "Dashboards skipped: the Kibana saved objects do not import into OpenSearch Dashboards", ""},
			{"api_key refused", []string{"test", "config", "-E", hosts, "-E", "output.opensearch.api_key=id:key"},
				1, "", "output.opensearch.api_key: OpenSearch has no API keys"},
		}
		for _, tt := range tests {
			t.Run(srv.Version+"/"+tt.name, func(t *testing.T) {
				start := time.Now()
				code, out, errOut := cli(tt.args...)
				if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
					t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
				}
				// "At once": one answer, no retries with backoff.
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("took %s", d)
				}
			})
		}
		var m map[string]any
		estest.NewClient(t, srv.URL).JSON("GET", "/_index_template/metrics-fleutan.*", nil, &m)
		if its, _ := m["index_templates"].([]any); len(its) != len(elasticsearch.AllDatasets()) {
			t.Errorf("index templates after setup in OpenSearch %s: %v", srv.Version, m)
		}
	}
}

// TestRunRefusesTheOtherProduct: `run` with each search output pointed at
// the other product stops at start with exit 1 and the product check's
// message, instead of retrying forever.
func TestRunRefusesTheOtherProduct(t *testing.T) {
	esURL := estest.URL(t)
	srv := ostest.ServerOf(t, "2")
	bin := buildBinary(t)
	cases := []struct{ out, host, want string }{
		{"elasticsearch", srv.URL, "for OpenSearch use output.opensearch instead of output.elasticsearch"},
		{"opensearch", esURL, "use output.elasticsearch instead of output.opensearch"},
	}
	for _, tc := range cases {
		t.Run(tc.out, func(t *testing.T) {
			cmd := exec.Command(bin, "-e", "-c", shippedConfig(t), "--path.home", t.TempDir(),
				"-E", "output.file.enabled=false", "-E", "output."+tc.out+".hosts=["+tc.host+"]")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 {
					t.Fatalf("run exited with %v, want exit 1; stderr:\n%s", err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("run still running after 60 s; stderr:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), "fleutanbeat: "+tc.out+": ") || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			t.Logf("exit 1 after %s", time.Since(start).Round(time.Millisecond))
		})
	}
}
