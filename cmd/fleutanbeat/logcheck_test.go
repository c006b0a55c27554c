package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// agentLog is the stderr of one run of the agent binary. When the test
// ends, every line it holds must be one JSON object with no key twice at
// any depth: log shippers and jq keep one of two equal keys, and some
// parsers refuse the line.
func agentLog(t *testing.T) *lockedBuffer {
	t.Helper()
	b := &lockedBuffer{}
	t.Cleanup(func() {
		for i, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			if err := strictJSONObject([]byte(line)); err != nil {
				t.Errorf("agent log line %d: %v: %s", i+1, err, line)
			}
		}
	})
	return b
}

// strictJSONObject decodes b as one JSON object and fails on a key that
// occurs twice in any object, which encoding/json silently accepts.
func strictJSONObject(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if tok, err := d.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (starts with %v)", tok)
	}
	if err := strictMembers(d); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// strictMembers reads the members of an object whose '{' was read, and
// its '}'.
func strictMembers(d *json.Decoder) error {
	seen := map[string]bool{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if err := strictValue(d); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	_, err := d.Token()
	return err
}

func strictValue(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return strictMembers(d)
	case json.Delim('['):
		for d.More() {
			if err := strictValue(d); err != nil {
				return err
			}
		}
		_, err := d.Token()
		return err
	}
	return nil
}

func TestStrictJSONObjectRejectsDuplicateKeys(t *testing.T) {
	tests := []struct {
		line string
		err  string // empty: valid
	}{
		{`{"level":"WARN","msg":"m","output":"elasticsearch"}`, ""},
		{`{"a":{"b":1,"c":[{"d":1},{"d":2}]},"e":"b"}`, ""},
		{`{"output":"elasticsearch","msg":"m","output":"elasticsearch"}`, `duplicate key "output"`},
		{`{"stats":{"pipeline":{"x":1,"x":2}}}`, `stats: pipeline: duplicate key "x"`},
		{`{"a":[{"k":1,"k":1}]}`, `a: duplicate key "k"`},
		{`not json`, "invalid character"},
		{`["a"]`, "not a JSON object"},
		{`{"a":1} {"b":2}`, "data after the JSON object"},
		{`{"a":1`, "EOF"},
	}
	for _, tt := range tests {
		err := strictJSONObject([]byte(tt.line))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: error %v, want %q", tt.line, err, tt.err)
		}
	}
}
