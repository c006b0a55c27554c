package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/cmd/fleutanbeat/queryapi"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// TestMonitorOnUnixSocket serves the monitoring endpoint and the query API
// on http.host: unix:///...: the socket is 0600, answers over the socket,
// replaces a stale socket of an earlier run, and is gone after Close.
func TestMonitorOnUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "fleutanbeat.sock")
	// A socket file left by an agent that was killed.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	c := defaultHTTPConfig()
	c.Enabled, c.Host = true, "unix://"+sock
	c.API.Enabled = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	api := queryapi.New(queryapi.Options{Latest: input.NewLatest()})
	mo, err := startMonitor(c, pipeline.NewMetrics(), pipeline.AgentInfo{}, "host", api, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with mode 0600", fi.Mode())
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for path, want := range map[string]string{
		"/stats":               `"uptime_ms"`,
		"/api/v1/openapi.yaml": "openapi: 3.1.0",
		"/api/v1/flows":        `"status":404`, // no flows input in this test
	} {
		resp, err := client.Get("http://fleutanbeat" + path)
		if err != nil {
			t.Fatalf("GET %s over the socket: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s %q, want %q in it", path, resp.Status, b, want)
		}
	}
	mo.Close()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

// TestMonitorRefusesNonLoopbackWithAPI: were Validate bypassed (or a name
// resolved elsewhere), listen itself refuses a non-loopback address while
// the API is on.
func TestMonitorRefusesNonLoopbackWithAPI(t *testing.T) {
	c := httpConfig{Enabled: true, Host: "0.0.0.0", Port: 0}
	c.API.Enabled = true
	_, err := startMonitor(c, pipeline.NewMetrics(), pipeline.AgentInfo{}, "host", nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("startMonitor on 0.0.0.0 with the API: %v", err)
	}
}

func TestLoopbackHosts(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "localhost.example": false, "myhost": false, "": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestAPIStoreGoesToTheFirstInputOfEachType: with http.api.enabled the
// agent makes one store and gives it to the first enabled input of each
// type only (the API documents that it shows that one); with the API off
// no input gets one, so no input copies its snapshots.
func TestAPIStoreGoesToTheFirstInputOfEachType(t *testing.T) {
	const cfg = `fleutanbeat.inputs:
  - type: flows
    enabled: false
  - type: flows
    period: 1s
  - type: cpu
  - type: flows
    period: 2s
http.enabled: true
http.host: 127.0.0.1
output.console: ~
`
	path := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, api := range []bool{true, false} {
		o := &options{configPath: path, pathHome: t.TempDir(), strictPerms: true}
		if api {
			o.overrides = multiFlag{"http.api.enabled=true"}
		}
		a, err := buildAgent(o, discardLogger)
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for _, in := range a.inputs {
			got = append(got, in.latest != nil)
		}
		want := []bool{api, api, false} // flows (1s), cpu, flows (2s)
		if !slices.Equal(got, want) || (a.latest != nil) != api {
			t.Errorf("api %v: inputs with the store %v, want %v (agent store %v)", api, got, want, a.latest != nil)
		}
		if api && a.inputs[0].latest != a.latest {
			t.Error("the input's store is not the agent's")
		}
		if wantTypes := map[bool][]string{true: {"flows", "cpu"}}[api]; !slices.Equal(a.apiInputs(), wantTypes) {
			t.Errorf("api %v: apiInputs %v, want %v", api, a.apiInputs(), wantTypes)
		}
		a.close()
	}
}

// TestReadmeListsTheAPIPaths keeps README's table of the query API equal
// to the spec's paths.
func TestReadmeListsTheAPIPaths(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var readme []string
	for _, m := range regexp.MustCompile("(?m)^\\| `GET (/api/v1/[^`]*)` \\|").FindAllStringSubmatch(string(b), -1) {
		readme = append(readme, m[1])
	}
	var doc struct {
		Paths map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(queryapi.Spec(), &doc); err != nil {
		t.Fatal(err)
	}
	var spec []string
	for p := range doc.Paths {
		spec = append(spec, p)
	}
	slices.Sort(readme)
	slices.Sort(spec)
	if !slices.Equal(readme, spec) {
		t.Errorf("README's query API table lists %v, the spec %v", readme, spec)
	}
}
