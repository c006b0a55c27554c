package queryapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the parameters, as openapi.yaml states them.
const (
	// maxPID is PID_MAX_LIMIT (linux/threads.h): no pid is larger.
	maxPID = 4194304
	// maxComm is TASK_COMM_LEN - 1: a process name (comm) is at most 15
	// bytes, so at most 15 characters.
	maxComm = 15
)

// query holds the parsed filters of a request; a nil pointer is a filter
// not given.
type query struct {
	pid     *int
	process *string
	port    *uint16
	peer    *netip.Prefix
}

// parseQuery checks the query string against the parameters a route
// accepts: an unknown or repeated parameter, or a value out of its range,
// is an error naming the parameter.
func parseQuery(r *http.Request, allowed []string) (query, error) {
	var q query
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return q, fmt.Errorf("malformed query string: %v", err)
	}
	for name, vs := range vals {
		if !contains(allowed, name) {
			if len(allowed) == 0 {
				return q, fmt.Errorf("unknown query parameter %q: %s takes none", name, r.URL.Path)
			}
			return q, fmt.Errorf("unknown query parameter %q (known: %s)", name, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return q, fmt.Errorf("query parameter %q given %d times: give it once", name, len(vs))
		}
		v := vs[0]
		switch name {
		case "pid":
			n, err := parsePID(v)
			if err != nil {
				return q, fmt.Errorf("query parameter pid: %v", err)
			}
			q.pid = &n
		case "process":
			if n := utf8.RuneCountInString(v); n < 1 || n > maxComm {
				return q, fmt.Errorf("query parameter process: %q is not a process name (1 to %d characters, as /proc/PID/comm)", v, maxComm)
			}
			q.process = &v
		case "port":
			n, err := parseUint(v, 65535)
			if err != nil {
				return q, fmt.Errorf("query parameter port: %v", err)
			}
			p := uint16(n)
			q.port = &p
		case "peer":
			p, err := parsePeer(v)
			if err != nil {
				return q, fmt.Errorf("query parameter peer: %v", err)
			}
			q.peer = &p
		}
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parsePID reads a pid: decimal digits, 1 to PID_MAX_LIMIT.
func parsePID(s string) (int, error) {
	n, err := parseUint(s, maxPID)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("0 is not a process id (1-%d)", maxPID)
	}
	return int(n), nil
}

// parseUint accepts decimal digits only (no sign, no spaces), up to max.
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty: want a number (0-%d)", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number (0-%d)", s, max)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("%s is out of range (0-%d)", s, max)
	}
	return n, nil
}

// parsePeer reads a CIDR (10.0.0.0/8, fd00::/8) or a single address (a
// /32 or /128). IPv6 addresses written with an embedded IPv4 part or a
// zone are refused: the spec's pattern does not describe them, and a
// peer never carries a zone.
func parsePeer(s string) (netip.Prefix, error) {
	if strings.Contains(s, ":") && strings.Contains(s, ".") || strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv6 in hexadecimal groups, without an embedded IPv4 address or a zone", s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR (10.0.0.0/8, fd00::/8)", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (10.0.0.0/8, fd00::/8)", s)
	}
	return p.Masked(), nil
}
