package kibana

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// fakeKibana checks the request as Kibana's _import route would and
// answers with reply; it records what it saw.
type fakeKibana struct {
	t        *testing.T
	reply    string
	status   int
	path     string
	auth     string
	objects  []byte
	requests int
}

func (f *fakeKibana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests++
	f.path = r.URL.Path + "?" + r.URL.RawQuery
	f.auth = r.Header.Get("Authorization")
	if r.Method != http.MethodPost || r.Header.Get("kbn-xsrf") == "" {
		http.Error(w, `{"statusCode":400,"message":"Request must contain a kbn-xsrf header."}`, http.StatusBadRequest)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if p.FormName() == "file" && strings.HasSuffix(p.FileName(), ".ndjson") {
			f.objects, _ = io.ReadAll(p)
		}
	}
	if f.objects == nil {
		http.Error(w, `{"message":"[request body.file]: expected value of type [Stream]"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	io.WriteString(w, f.reply)
}

func testConfig(url string) Config {
	c := DefaultConfig()
	c.Host = url
	c.Timeout = config.Duration(10 * time.Second)
	return c
}

func TestImportReportsSuccess(t *testing.T) {
	n := bytes.Count(Objects(), []byte("\n"))
	tests := []struct {
		name     string
		edit     func(*Config)
		wantPath string
		wantAuth string
	}{
		{"default space basic auth", func(c *Config) { c.Username, c.Password = "elastic", "changeme" },
			"/api/saved_objects/_import?overwrite=true", "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:changeme"))},
		{"space and api key id:key", func(c *Config) { c.Space.ID = "netops"; c.APIKey = "id1:secret" },
			"/s/netops/api/saved_objects/_import?overwrite=true", "ApiKey " + base64.StdEncoding.EncodeToString([]byte("id1:secret"))},
		{"encoded api key", func(c *Config) { c.APIKey = "aWQxOnNlY3JldA==" },
			"/api/saved_objects/_import?overwrite=true", "ApiKey aWQxOnNlY3JldA=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk := &fakeKibana{t: t, status: 200, reply: fmt.Sprintf(`{"success":true,"successCount":%d,"successResults":[]}`, n)}
			srv := httptest.NewServer(fk)
			defer srv.Close()
			cfg := testConfig(srv.URL)
			tt.edit(&cfg)
			var out bytes.Buffer
			if err := Import(context.Background(), cfg, &out); err != nil {
				t.Fatalf("Import: %v", err)
			}
			if fk.path != tt.wantPath || fk.auth != tt.wantAuth {
				t.Errorf("request %s auth %q, want %s auth %q", fk.path, fk.auth, tt.wantPath, tt.wantAuth)
			}
			if !bytes.Equal(fk.objects, Objects()) {
				t.Errorf("multipart file differs from the bundle (%d bytes, want %d)", len(fk.objects), len(Objects()))
			}
			want := fmt.Sprintf("Kibana imported %d of %d saved objects\n", n, n)
			if out.String() != want {
				t.Errorf("report %q, want %q", out.String(), want)
			}
		})
	}
}

func TestImportPartialFailureReportsEveryObject(t *testing.T) {
	reply, err := os.ReadFile("testdata/partial_failure.json")
	if err != nil {
		t.Fatal(err)
	}
	fk := &fakeKibana{t: t, status: 200, reply: string(reply)}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	var out bytes.Buffer
	err = Import(context.Background(), testConfig(srv.URL), &out)
	if err == nil || err.Error() != "kibana: import: 2 of 34 saved objects failed (they need Kibana 8.9 or later)" {
		t.Fatalf("Import error %v, want 2 of 34 failed", err)
	}
	want := "Kibana imported 32 of 34 saved objects\n" +
		"  error: lens fleutan-flow-bdp (\"Bandwidth-delay product per flow\"): unknown: migration failed\n" +
		"  error: dashboard fleutan-flow-volumes (\"[fleutanbeat] Flow volumes\"): missing_references [missing lens fleutan-flow-bdp]\n"
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestImportFailsOnBadReplies(t *testing.T) {
	tests := []struct {
		name, reply, wantPrefix string
		status                  int
	}{
		{"unauthorized", `{"statusCode":401,"error":"Unauthorized"}`, "kibana: import: 401 Unauthorized: ", 401},
		{"not json", `<html>proxy error</html>`, "kibana: import: decoding reply: ", 200},
		{"success false without errors", `{"success":false,"successCount":0}`, "kibana: import: 34 of 34 saved objects failed", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeKibana{t: t, status: tt.status, reply: tt.reply})
			defer srv.Close()
			err := Import(context.Background(), testConfig(srv.URL), io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("error %v, want prefix %q", err, tt.wantPrefix)
			}
		})
	}
}

func TestImportWithoutXSRFIsWhatKibanaRefuses(t *testing.T) {
	// Guards the fake: a request without kbn-xsrf gets 400, so the
	// header checks above can fail.
	srv := httptest.NewServer(&fakeKibana{t: t, status: 200, reply: `{}`})
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/saved_objects/_import", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestImportOverTLS(t *testing.T) {
	n := bytes.Count(Objects(), []byte("\n"))
	fk := &fakeKibana{t: t, status: 200, reply: fmt.Sprintf(`{"success":true,"successCount":%d}`, n)}
	srv := httptest.NewTLSServer(fk)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	if err := Import(context.Background(), cfg, io.Discard); err == nil {
		t.Fatal("untrusted certificate accepted with verification_mode full")
	}
	cfg.SSL.VerificationMode = "none"
	if err := Import(context.Background(), cfg, io.Discard); err != nil {
		t.Fatalf("verification_mode none: %v", err)
	}
}
