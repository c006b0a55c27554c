// Package queryapi is the agent's local query API: read-only JSON views of
// the collectors' latest collections, served under /api/v1/ on the
// monitoring endpoint when http.api.enabled is true.
//
// The documents are the library snapshot types (input/flows, input/cpu,
// input/qdisc, input/rdma) as encoding/json writes them, with the changes over the
// last period computed by each library's Diff from the latest collection
// and the one before it (input.Latest keeps both). openapi.yaml, embedded
// and served at /api/v1/openapi.yaml, is the contract: the package's tests
// keep the routes and the Go types equal to it, and schemathesis checks the
// running agent's answers against it.
package queryapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/fleutan/fleutanbeat/input"
)

// Prefix is where the API is mounted on the monitoring endpoint.
const Prefix = "/api/v1/"

//go:embed openapi.yaml
var spec []byte

// Spec is the OpenAPI 3.1 document the API follows.
func Spec() []byte { return spec }

// Options is what the agent gives the API.
type Options struct {
	// Latest is the store the inputs publish their collections to.
	Latest *input.Latest
	// Inputs are the input types that publish to Latest. An endpoint
	// whose input type is not among them answers 404: it would never have
	// data. A listed type without a collection yet answers 503.
	Inputs []string
	Logger *slog.Logger
}

type server struct {
	latest *input.Latest
	inputs []string
	log    *slog.Logger
}

// route is one path of the API: every path serves GET only, and accepts
// exactly the query parameters it lists.
type route struct {
	pattern string // http.ServeMux pattern, also the OpenAPI path
	params  []string
	handle  func(s *server, w http.ResponseWriter, r *http.Request, q query)
}

// routes is the one list the handler is built from, and the one the
// spec test compares with openapi.yaml.
var routes = []route{
	{"/api/v1/flows", []string{"pid", "process", "port", "peer"}, (*server).flows},
	{"/api/v1/processes/{pid}", nil, (*server).process},
	{"/api/v1/cpu", nil, (*server).cpu},
	{"/api/v1/qdisc", nil, (*server).qdisc},
	{"/api/v1/rdma", nil, (*server).rdma},
	{"/api/v1/openapi.yaml", nil, (*server).serveSpec},
}

// New returns the handler for everything under Prefix.
func New(o Options) http.Handler {
	s := &server{latest: o.Latest, inputs: o.Inputs, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s: only GET", r.Method, rt.pattern)
				return
			}
			q, err := parseQuery(r, rt.params)
			if err != nil {
				writeError(w, http.StatusBadRequest, "%v", err)
				return
			}
			rt.handle(s, w, r, q)
		})
	}
	// Anything else under the prefix: a JSON 404 rather than the mux's
	// plain text, so a client always gets the one error shape.
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API path %s (see %sopenapi.yaml)", r.URL.Path, Prefix)
	})
	return mux
}

func (s *server) serveSpec(w http.ResponseWriter, _ *http.Request, _ query) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(spec)
}

// configured reports whether an input of type typ publishes to the store.
func (s *server) configured(typ string) bool { return slices.Contains(s.inputs, typ) }

// apiError is an answer other than 200, written by writeError.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) write(w http.ResponseWriter) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, e.status, "%s", e.msg)
}

// collection returns the latest collection of typ and the one before it;
// the error is 404 when no input of typ runs, 503 before its first
// collection.
func (s *server) collection(typ string) (prev, cur input.Collection, _ *apiError) {
	if !s.configured(typ) {
		return prev, cur, &apiError{http.StatusNotFound, "no " + typ + " input is running: add one to fleutanbeat.inputs"}
	}
	prev, cur, ok := s.latest.Pair(typ)
	if !ok {
		return prev, cur, &apiError{http.StatusServiceUnavailable, "the " + typ + " input has not completed its first collection yet"}
	}
	return prev, cur, nil
}

// errorBody is the one shape of every error answer.
type errorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	var b errorBody
	b.Error.Status = status
	b.Error.Message = fmt.Sprintf(format, args...)
	body, _ := json.Marshal(b) // strings and an int: cannot fail
	writeBody(w, status, body)
}

// writeJSON answers 200 with v.
func (s *server) writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a value the package itself built gets here (a NaN, say): a
		// bug, not bad input.
		s.log.Error("query API: encoding an answer", "error", err)
		writeError(w, http.StatusInternalServerError, "encoding the answer: %v", err)
		return
	}
	writeBody(w, http.StatusOK, b)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
