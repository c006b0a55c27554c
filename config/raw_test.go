package config

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"
)

type validated struct {
	N int `yaml:"n"`
}

func (v validated) Validate() error {
	if v.N < 0 {
		return errors.Join(Errorf("n", "%d is negative", v.N), Errorf("sub.m", "also wrong"))
	}
	return nil
}

// TestDecodeValidAndPrefix: a decode error comes back as it is, Validate's
// errors positioned under the section, and Prefix nests a sub-section's.
func TestDecodeValidAndPrefix(t *testing.T) {
	tests := []struct{ src, want string }{
		{"n: 1", ""},
		{"n: x", `f.yml:1:4: out.x.n: "x" is not an integer`},
		{"n: -1", "f.yml:1:4: out.x.n: -1 is negative\nf.yml:1:1: out.x.sub.m: also wrong"},
	}
	for _, tt := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
			t.Fatal(err)
		}
		var v validated
		err := NewRaw(doc.Content[0], "f.yml", "out.x").DecodeValid(&v)
		if got := errString(err); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.src, got, tt.want)
		}
	}
	if Prefix("ssl", nil) != nil {
		t.Error("Prefix(nil) is not nil")
	}
	got := Prefix("ssl", errors.Join(Errorf("key", "bad"), errors.New("plain"))).Error()
	if want := "ssl.key: bad\nssl: plain"; got != want {
		t.Errorf("Prefix: got %q, want %q", got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
