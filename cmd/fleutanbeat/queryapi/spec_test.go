package queryapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPI is the part of openapi.yaml the tests read.
type openAPI struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		Schemas    map[string]*schema    `yaml:"schemas"`
		Parameters map[string]*parameter `yaml:"parameters"`
	} `yaml:"components"`
}

type operation struct {
	Parameters []parameter    `yaml:"parameters"`
	Responses  map[string]any `yaml:"responses"`
	Extra      map[string]any `yaml:",inline"`
}

type parameter struct {
	Ref      string  `yaml:"$ref"`
	Name     string  `yaml:"name"`
	In       string  `yaml:"in"`
	Required bool    `yaml:"required"`
	Schema   *schema `yaml:"schema"`
}

// schema is the JSON Schema subset the spec uses.
type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 any                `yaml:"type"` // a name or a list (["string", "null"])
	Properties           map[string]*schema `yaml:"properties"`
	Required             []string           `yaml:"required"`
	AdditionalProperties any                `yaml:"additionalProperties"`
	Items                *schema            `yaml:"items"`
	OneOf                []*schema          `yaml:"oneOf"`
	AnyOf                []*schema          `yaml:"anyOf"`
	Pattern              string             `yaml:"pattern"`
	Minimum              *float64           `yaml:"minimum"`
	Maximum              *float64           `yaml:"maximum"`
	MinLength            *int               `yaml:"minLength"`
	MaxLength            *int               `yaml:"maxLength"`
	Extra                map[string]any     `yaml:",inline"`
}

func loadSpec(t testing.TB) *openAPI {
	t.Helper()
	var doc openAPI
	if err := yaml.Unmarshal(Spec(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.yaml is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	return &doc
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// TestRoutesAreTheSpecsPaths keeps the handler and openapi.yaml from
// drifting: every spec path is a route the mux serves (with GET only)
// and every route is a spec path, with the same query and path
// parameters.
func TestRoutesAreTheSpecsPaths(t *testing.T) {
	doc := loadSpec(t)
	mux := New(Options{}).(*http.ServeMux)
	var specPaths, routePaths []string
	for p, ops := range doc.Paths {
		specPaths = append(specPaths, p)
		var methods []string
		for m := range ops {
			methods = append(methods, m)
		}
		if len(methods) != 1 || methods[0] != "get" {
			t.Errorf("spec path %s has methods %v; the API serves GET only", p, methods)
		}
		// The mux must route a request for the path (parameters filled
		// in) to the pattern of the same name.
		req := httptest.NewRequest(http.MethodGet, pathParam.ReplaceAllString(p, "1"), nil)
		if _, pattern := mux.Handler(req); pattern != p {
			t.Errorf("spec path %s: the mux routes %s to %q", p, req.URL.Path, pattern)
		}
	}
	for _, rt := range routes {
		routePaths = append(routePaths, rt.pattern)
		op, ok := doc.Paths[rt.pattern]["get"]
		if !ok {
			t.Errorf("route %s is not in openapi.yaml", rt.pattern)
			continue
		}
		var query, path []string
		for _, p := range op.Parameters {
			if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
				if doc.Components.Parameters[name] == nil {
					t.Fatalf("%s: unresolvable parameter %s", rt.pattern, p.Ref)
				}
				p = *doc.Components.Parameters[name]
			}
			switch p.In {
			case "query":
				query = append(query, p.Name)
			case "path":
				path = append(path, p.Name)
				if !p.Required {
					t.Errorf("%s: path parameter %s must be required", rt.pattern, p.Name)
				}
			default:
				t.Errorf("%s: parameter %s in %s: the API reads only query and path parameters", rt.pattern, p.Name, p.In)
			}
		}
		var wantPath []string
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			wantPath = append(wantPath, m[1])
		}
		sort.Strings(query)
		want := slices.Clone(rt.params)
		sort.Strings(want)
		if !slices.Equal(query, want) {
			t.Errorf("%s: spec query parameters %v, route accepts %v", rt.pattern, query, want)
		}
		if !slices.Equal(path, wantPath) {
			t.Errorf("%s: spec path parameters %v, pattern has %v", rt.pattern, path, wantPath)
		}
		for _, code := range []string{"200", "400"} {
			if _, ok := op.Responses[code]; !ok {
				t.Errorf("%s: spec documents no %s answer", rt.pattern, code)
			}
		}
	}
	sort.Strings(specPaths)
	sort.Strings(routePaths)
	if !slices.Equal(specPaths, routePaths) {
		t.Errorf("spec paths %v, routes %v", specPaths, routePaths)
	}
}

func TestSpecIsServed(t *testing.T) {
	rec := httptest.NewRecorder()
	New(Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.yaml", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/yaml" || rec.Body.String() != string(Spec()) {
		t.Errorf("GET /api/v1/openapi.yaml: %d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

// TestErrorsAreJSON: every refusal, whatever its cause, has the one error
// shape with the status repeated and a message naming what was wrong.
func TestErrorsAreJSON(t *testing.T) {
	tests := []struct {
		method, target string
		status         int
		message        string // a part of the message
		allow          string
	}{
		{"POST", "/api/v1/openapi.yaml", 405, "method POST not allowed", "GET"},
		{"HEAD", "/api/v1/openapi.yaml", 405, "", "GET"},
		{"GET", "/api/v1/nothing", 404, "no such API path /api/v1/nothing", ""},
		{"GET", "/api/v1/", 404, "no such API path /api/v1/", ""},
		{"GET", "/api/v1/openapi.yaml?x=1", 400, `unknown query parameter "x"`, ""},
		{"GET", "/api/v1/openapi.yaml?%zz", 400, "malformed query string", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			New(Options{}).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.method == "HEAD" {
				return
			}
			var body errorBody
			dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if body.Error.Status != tt.status || !strings.Contains(body.Error.Message, tt.message) {
				t.Errorf("body %+v, want status %d and a message with %q", body, tt.status, tt.message)
			}
		})
	}
}
