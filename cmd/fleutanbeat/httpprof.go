package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startHTTPProf serves Go's profiles (net/http/pprof) on addr, as Beats'
// --httpprof does: `go tool pprof http://ADDR/debug/pprof/heap` shows where
// the agent's memory goes. The profiles name code and data of the running
// agent and have no authentication, so addr must be a loopback host:port.
// It returns the server and the address it listens on.
func startHTTPProf(addr string) (*http.Server, string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("--httpprof %q: %w (want HOST:PORT)", addr, err)
	}
	if !isLoopbackHost(host) {
		return nil, "", fmt.Errorf("--httpprof %q: %q is not a loopback host: the profiles are local only", addr, host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--httpprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// Serve returns when Close is called at exit.
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}
