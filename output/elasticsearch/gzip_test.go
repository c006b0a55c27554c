package elasticsearch

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestBulkBodyCompression: with compression_level the bulk request on the
// wire is gzip and inflates to the NDJSON body (two lines per event); with
// 0 it is plain. The body is compressed by the output itself, into a
// buffer per request (the race it avoids is caught by the 413 test on the
// real node under -race).
func TestBulkBodyCompression(t *testing.T) {
	for _, level := range []int{0, 1, 9} {
		var mu sync.Mutex
		var encodings []string
		var lines []int
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.Header().Set("Content-Type", "application/json")
			var body io.Reader = r.Body
			enc := r.Header.Get("Content-Encoding")
			if enc == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				body = zr
			}
			sc := bufio.NewScanner(body)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			n := 0
			var items []string
			for ; sc.Scan(); n++ {
				if n%2 == 0 {
					items = append(items, `{"create":{"status":201}}`)
				}
			}
			if sc.Err() != nil {
				http.Error(w, sc.Err().Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			encodings = append(encodings, enc)
			lines = append(lines, n)
			mu.Unlock()
			io.WriteString(w, `{"errors":false,"items":[`+strings.Join(items, ",")+`]}`)
		}))
		c := faultConfig(srv.URL)
		c.CompressionLevel = level
		cl := newTestClient(t, c)
		b := pipeline.NewBatch(flowEvents(0, 25, time.Now()))
		if err := cl.Publish(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		want := ""
		if level > 0 {
			want = "gzip"
		}
		if len(encodings) != 1 || encodings[0] != want || lines[0] != 50 {
			t.Errorf("compression_level %d: requests with Content-Encoding %q and %v lines, want one %q request of 50 lines", level, encodings, lines, want)
		}
		if st := cl.Stats(); st.Acked != 25 {
			t.Errorf("compression_level %d: %d acked, want 25", level, st.Acked)
		}
	}
}
