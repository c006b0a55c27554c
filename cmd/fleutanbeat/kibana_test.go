package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSetupDashboards imports the bundle into a stand-in Kibana (Kibana
// cannot run here; the kibana package tests the request in detail) and
// reports its answer; a partial failure exits 1.
func TestSetupDashboards(t *testing.T) {
	var failures int
	var gotObjects int
	kbn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/saved_objects/_import" || r.Header.Get("kbn-xsrf") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(f)
		gotObjects = bytes.Count(bytes.TrimSpace(body), []byte("\n")) + 1
		var errs []any
		for i := 0; i < failures; i++ {
			errs = append(errs, map[string]any{"id": "x", "type": "lens", "error": map[string]any{"type": "unknown"}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"success": failures == 0, "successCount": gotObjects - failures, "errors": errs})
	}))
	defer kbn.Close()
	cfg := shippedConfig(t)
	run := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main([]string{"setup", "--dashboards", "-c", cfg, "--path.home", t.TempDir(), "-E", "setup.kibana.host=" + kbn.URL}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run()
	if code != exitOK || gotObjects < 20 || !strings.Contains(out, "imported") {
		t.Fatalf("exit %d, %d objects sent\nstdout: %s\nstderr: %s", code, gotObjects, out, errOut)
	}
	failures = 2
	if code, out, errOut := run(); code != exitConfig || !strings.Contains(errOut, "2 of") {
		t.Fatalf("partial failure: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "dashboards"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("export dashboards: exit %d %s", code, stderr.String())
	}
	if n := bytes.Count(stdout.Bytes(), []byte("\n")); n != gotObjects {
		t.Errorf("export dashboards printed %d lines, setup sent %d objects", n, gotObjects)
	}
}
