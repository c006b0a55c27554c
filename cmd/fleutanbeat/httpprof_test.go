package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPProf: --httpprof serves the heap profile on loopback and refuses
// any other host, naming the flag.
func TestHTTPProf(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.1.2.3:6060", "6060"} {
		if _, _, err := startHTTPProf(addr); err == nil || !strings.Contains(err.Error(), "--httpprof") {
			t.Errorf("startHTTPProf(%q) = %v, want an error naming --httpprof", addr, err)
		}
	}
	srv, addr, err := startHTTPProf("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "heap profile:") {
		t.Errorf("heap profile: %s %.80q", resp.Status, body)
	}
}
