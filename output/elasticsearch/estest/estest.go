// Package estest gives tests the real Elasticsearch that `make test` starts
// for the run (.ci/elasticsearch.sh run), a small REST client for
// assertions that is independent of the output under test, and dedicated
// nodes that a test stops and starts itself.
//
// Tests that need Elasticsearch skip without it, unless
// FLEUTANBEAT_REQUIRE_ES=1 (set by .ci/run) turns the skip into a failure.
// With a Docker engine (.ci/docker.sh) every node is a container of the
// image .ci/elasticsearch.sh built; FLEUTANBEAT_REQUIRE_DOCKER=1 (.ci/run)
// makes a node that is a process a failure.
package estest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// URL is the Elasticsearch that `make test` started once for the whole run.
// Without it the test skips, unless FLEUTANBEAT_REQUIRE_ES=1 makes that a
// failure.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FLEUTANBEAT_ES_URL")
	if u == "" {
		if os.Getenv("FLEUTANBEAT_REQUIRE_ES") == "1" {
			t.Fatal("FLEUTANBEAT_ES_URL is not set and FLEUTANBEAT_REQUIRE_ES=1: run through `.ci/elasticsearch.sh run VERSION DIR -- go test ...`")
		}
		t.Skip("no Elasticsearch: set FLEUTANBEAT_ES_URL (make test starts one)")
	}
	if os.Getenv("FLEUTANBEAT_REQUIRE_DOCKER") == "1" && os.Getenv("FLEUTANBEAT_ES_RUNTIME") != "container" {
		t.Fatalf("the run's Elasticsearch at %s is not a container (FLEUTANBEAT_ES_RUNTIME=%q) and FLEUTANBEAT_REQUIRE_DOCKER=1", u, os.Getenv("FLEUTANBEAT_ES_RUNTIME"))
	}
	return strings.TrimRight(u, "/")
}

// Version is the version the script runs, for tests that start their own
// node. It skips or fails as URL does.
func Version(t testing.TB) string {
	t.Helper()
	URL(t)
	v := os.Getenv("FLEUTANBEAT_ES_VERSION")
	if v == "" {
		t.Fatal("FLEUTANBEAT_ES_VERSION is not set next to FLEUTANBEAT_ES_URL")
	}
	return v
}

// Client is a small REST client for assertions, independent of the output
// under test. HTTP may be given another transport (TLS) and User a basic
// auth user before use; T is the test its failures go to.
type Client struct {
	T        testing.TB
	URL      string
	HTTP     *http.Client
	User     string
	Password string
}

// NewClient is a client of the node at url, with a one-minute timeout.
func NewClient(t testing.TB, url string) *Client {
	return &Client{T: t, URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: time.Minute}}
}

// Do sends body (JSON-encoded unless nil) to path and returns the status
// and the reply as it came; only a failed request fails the test.
func (c *Client) Do(method, path string, body any) (int, []byte) {
	c.T.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.T.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.URL+path, r)
	if err != nil {
		c.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// JSON is Do that fails the test unless the status is 2xx, and decodes the
// reply into out unless out is nil.
func (c *Client) JSON(method, path string, body, out any) {
	c.T.Helper()
	st, b := c.Do(method, path, body)
	if st/100 != 2 {
		c.T.Fatalf("%s %s: status %d: %s", method, path, st, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.T.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// FieldTypes reads back the mapped type of each field over every index of
// target (an index, data stream or pattern); a field mapped differently in
// two indices is reported as "conflict(A,B)", so no index can hide behind
// another.
func (c *Client) FieldTypes(target string, fields ...string) map[string]string {
	c.T.Helper()
	var r map[string]struct {
		Mappings map[string]struct {
			Mapping map[string]struct {
				Type string `json:"type"`
			} `json:"mapping"`
		} `json:"mappings"`
	}
	c.JSON("GET", "/"+target+"/_mapping/field/"+strings.Join(fields, ","), nil, &r)
	out := map[string]string{}
	for _, idx := range r {
		for f, m := range idx.Mappings {
			for _, v := range m.Mapping {
				if cur, ok := out[f]; ok && cur != v.Type {
					out[f] = "conflict(" + cur + "," + v.Type + ")"
					continue
				}
				out[f] = v.Type
			}
		}
	}
	return out
}
