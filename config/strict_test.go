package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	Level int    `yaml:"level"`
	Note  string `yaml:"note,omitempty"`
}

type decodeTarget struct {
	inner    `yaml:",inline"`
	Ptr      *inner         `yaml:"ptr"`
	Sections map[string]Raw `yaml:"sections"`
	Items    []Raw          `yaml:"items"`
	One      Raw            `yaml:"one"`
	Small    int8           `yaml:"small"`
	Big      uint64         `yaml:"big"`
	Ratio    float32        `yaml:"ratio"`
	Wait     time.Duration  `yaml:"wait"`
	Addr     netip.Addr     `yaml:"addr"`
	Pair     [2]int         `yaml:"pair"`
	Counts   map[string]int `yaml:"counts"`
	Size     ByteSize       `yaml:"size"`
	Untagged string
	Skipped  string `yaml:"-"`
}

type withExtra struct {
	Name  string         `yaml:"name"`
	Extra map[string]int `yaml:",inline"`
}

func TestDecodeAcceptsEveryShape(t *testing.T) {
	root := load(t, `
level: 3
note: hi
ptr: {level: 4}
sections:
  a: {x: 1}
  b: ~
items: [{y: 1}, 2]
one: [z]
small: -128
big: 18446744073709551615
ratio: 1.5
wait: 1m30s
addr: 10.1.2.3
pair: [1, 2]
counts: {x: 1, y: 1e3}
size: 64KiB
untagged: u
`, nil)
	d := decodeTarget{Skipped: "kept"}
	if err := root.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Level != 3 || d.Note != "hi" || d.Ptr == nil || d.Ptr.Level != 4 || d.Small != -128 ||
		d.Big != 1<<64-1 || d.Ratio != 1.5 || d.Wait != 90*time.Second || d.Addr != netip.MustParseAddr("10.1.2.3") ||
		d.Pair != [2]int{1, 2} || !reflect.DeepEqual(d.Counts, map[string]int{"x": 1, "y": 1000}) ||
		d.Size != 64<<10 || d.Untagged != "u" || d.Skipped != "kept" {
		t.Errorf("decoded %+v", d)
	}
	if d.Sections["a"].Path() != "sections.a" || !d.Sections["b"].IsZero() || d.Sections["b"].Path() != "sections.b" {
		t.Errorf("sections %v", d.Sections)
	}
	if len(d.Items) != 2 || d.Items[1].Path() != "items.1" || d.Items[0].line() != 8 || d.One.Path() != "one" {
		t.Errorf("items %+v, one %+v", d.Items, d.One)
	}

	var e withExtra
	if err := load(t, "name: n\na: 1\nb: 2\n", nil).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Name != "n" || !reflect.DeepEqual(e.Extra, map[string]int{"a": 1, "b": 2}) {
		t.Errorf("inline map: %+v", e)
	}
}

func TestDecodeRejectsWrongValues(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"int8 overflow", "small: 128", `test.yml:1:8: small: "128" is out of range (-128..127)`},
		{"float for int", "small: 1.5", `test.yml:1:8: small: "1.5" is not an integer`},
		{"float32 overflow", "ratio: 1e40", `test.yml:1:8: ratio: "1e40" is out of range`},
		{"not a number", "ratio: half", `test.yml:1:8: ratio: "half" is not a number`},
		{"negative uint64", "big: -1", `test.yml:1:6: big: "-1" is out of range (0..18446744073709551615)`},
		{"bad time.Duration", "wait: 5 min", `test.yml:1:7: wait: "5 min" is not a duration (use a number with a unit: 500ms, 10s, 5m)`},
		{"bad text value", "addr: 10.1.2", `test.yml:1:7: addr: ParseAddr("10.1.2"): IPv4 address too short`},
		{"array length", "pair: [1]", `test.yml:1:7: pair: expected a list of 2 values, got 1`},
		{"mapping for map of int", "counts: {x: [1]}", `test.yml:1:13: counts.x: expected an integer, got a list`},
		{"byte size as mapping", "size: {a: 1}", `test.yml:1:7: size: expected a byte size such as 64MiB, got a mapping`},
		{"inline struct key typo", "levle: 1", `test.yml:1:1: levle: unknown key (known keys: addr, big, counts, items, level, note, one, pair, ptr, ratio, sections, size, small, untagged, wait)`},
		{"pointer to struct gets scalar", "ptr: 5", `test.yml:1:6: ptr: expected a mapping, got "5"`},
		{"list for Raw list", "items: {a: 1}", `test.yml:1:8: items: expected a list, got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d decodeTarget
			err := load(t, tt.yml+"\n", nil).Decode(&d)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
			assertPositioned(t, err)
		})
	}
}

func TestDecodeNullKeepsDefaults(t *testing.T) {
	d := decodeTarget{inner: inner{Level: 7}, Ptr: &inner{Level: 8}}
	if err := load(t, "level: ~\nptr: ~\n", nil).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Level != 7 || d.Ptr == nil || d.Ptr.Level != 8 {
		t.Errorf("null changed defaults: %+v", d)
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	var d decodeTarget
	err := load(t, "level: 1\n", nil).Decode(d)
	if err == nil {
		t.Fatal("decoding into a non-pointer succeeded")
	}
	assertPositioned(t, err)
}
