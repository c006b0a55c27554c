package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

var ts = time.Date(2026, 11, 27, 4, 5, 34, 123456789, time.UTC)

func encode(fields pipeline.M) string {
	e := pipeline.Event{Timestamp: ts, Fields: fields}
	return string(AppendEvent(nil, &e, Options{}))
}

// stdJSON encodes v as encoding/json does with HTML escaping off, the
// reference our encoder must match byte for byte.
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

type marshalFails struct{}

func (marshalFails) MarshalJSON() ([]byte, error) { return nil, errors.New("boom") }

type marshalPanics struct{}

func (marshalPanics) MarshalJSON() ([]byte, error) { panic("kaboom") }

type custom struct {
	A int    `json:"a"`
	B string `json:"b"`
}

func TestAppendEventValues(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, `null`},
		{"string", "plain", `"plain"`},
		{"string escapes", "a\"b\\c\n\r\t\b\f\x01\x1f<>&\x7f", `"a\"b\\c\n\r\t\b\f\u0001\u001f<>&` + "\x7f" + `"`},
		{"string invalid utf8", "a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"string line separators", "x\u2028y\u2029z", `"x\u2028y\u2029z"`},
		{"string multibyte", "héllo 世界 🙂", `"héllo 世界 🙂"`},
		{"bool", true, `true`},
		{"int", -42, `-42`},
		{"int8", int8(-128), `-128`},
		{"int16", int16(32767), `32767`},
		{"int32", int32(-2147483648), `-2147483648`},
		{"int64", int64(math.MinInt64), `-9223372036854775808`},
		{"uint", uint(7), `7`},
		{"uint8", uint8(255), `255`},
		{"uint16", uint16(65535), `65535`},
		{"uint32", uint32(4294967295), `4294967295`},
		{"uint64", uint64(math.MaxUint64), `18446744073709551615`},
		{"float64 integer", float64(14662), `14662`},
		{"float64 fraction", 0.1, `0.1`},
		{"float64 large", 1e20, `100000000000000000000`},
		{"float64 exponent", 1e21, `1e+21`},
		{"float64 tiny", 1e-7, `1e-7`},
		{"float64 negative zero", math.Copysign(0, -1), `-0`},
		{"float32", float32(0.1), `0.1`},
		{"float32 exponent", float32(1e-7), `1e-7`},
		{"NaN", math.NaN(), `null`},
		{"+Inf", math.Inf(1), `null`},
		{"-Inf float32", float32(math.Inf(-1)), `null`},
		{"time", time.Date(2026, 1, 2, 3, 4, 5, 6_999_999, time.FixedZone("x", 3600)), `"2026-01-02T02:04:05.006Z"`},
		{"duration", 1500 * time.Millisecond, `1500000000`},
		{"netip v4", netip.MustParseAddr("192.0.2.1"), `"192.0.2.1"`},
		{"netip v6", netip.MustParseAddr("2001:db8::1"), `"2001:db8::1"`},
		{"netip v6 zone", netip.MustParseAddr("fe80::1%eth\"0"), `"fe80::1%eth\"0"`},
		{"netip zero", netip.Addr{}, `""`},
		{"addrport", netip.MustParseAddrPort("[2001:db8::1]:443"), `"[2001:db8::1]:443"`},
		{"addrport zero", netip.AddrPort{}, `""`},
		{"net.IP v4", net.IPv4(198, 51, 100, 7), `"198.51.100.7"`},
		{"net.IP v6", net.ParseIP("2001:db8::2"), `"2001:db8::2"`},
		{"net.IP empty", net.IP(nil), `""`},
		{"net.IP bad length", net.IP{1, 2, 3}, `"?010203"`},
		{"[]string", []string{"a", "b\n"}, `["a","b\n"]`},
		{"[]string empty", []string{}, `[]`},
		{"[]string nil", []string(nil), `null`},
		{"[]int64", []int64{-1, 2}, `[-1,2]`},
		{"[]uint64", []uint64{1, math.MaxUint64}, `[1,18446744073709551615]`},
		{"[]uint64 nil", []uint64(nil), `null`},
		{"[]int64 nil", []int64(nil), `null`},
		{"[]any", []any{1, "x", nil, pipeline.M{"b": 1, "a": 2}}, `[1,"x",null,{"a":2,"b":1}]`},
		{"[]any nil", []any(nil), `null`},
		{"M sorted", pipeline.M{"z": 1, "a": pipeline.M{"y": true, "b": false}}, `{"a":{"b":false,"y":true},"z":1}`},
		{"M nil", pipeline.M(nil), `null`},
		{"map[string]any", map[string]any{"b": "2", "a": "1"}, `{"a":"1","b":"2"}`},
		{"map empty", map[string]any{}, `{}`},
		{"fallback struct", custom{A: 1, B: "<x>"}, `{"a":1,"b":"<x>"}`},
		{"fallback map[string]int", map[string]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
		{"fallback unsupported", make(chan int), `"codec: cannot encode chan int: json: unsupported type: chan int"`},
		{"fallback marshal error", marshalFails{}, `"codec: cannot encode codec.marshalFails: json: error calling MarshalJSON for type codec.marshalFails: boom"`},
		{"fallback marshal panic", marshalPanics{}, `"codec: cannot encode codec.marshalPanics: panic: kaboom"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := encode(pipeline.M{"v": c.v})
			want := `{"@timestamp":"2026-11-27T04:05:34.123Z","v":` + c.want + `}`
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
}

// TestAppendEventMatchesEncodingJSON checks the claim that, apart from
// times and non-finite floats, our bytes are encoding/json's bytes.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	fields := pipeline.M{
		"s":     "x\u2028\x00\xfe<&>\"",
		"ints":  []any{int8(1), int16(-2), int32(3), int64(-4), uint(5), uint8(6), uint16(7), uint32(8), uint64(9)},
		"fl":    []any{0.0, 1.0, -1.5, 1e-6, 1e-7, 123456789e30, float32(3.4e38), float32(1e-45), 5e-324, math.MaxFloat64},
		"ip":    []any{netip.MustParseAddr("::ffff:1.2.3.4"), net.ParseIP("::ffff:1.2.3.4"), netip.MustParseAddrPort("1.2.3.4:5")},
		"dur":   time.Duration(-5),
		"nest":  map[string]any{"é": pipeline.M{"": nil, "A": "a", "a": []string{"1"}}},
		"slice": []int64{math.MaxInt64},
	}
	got := encode(fields)
	want := `{"@timestamp":"2026-11-27T04:05:34.123Z",` + strings.TrimPrefix(stdJSON(t, fields), "{")
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestAppendOrderedMatchesMap: an *pipeline.Object encodes exactly as the
// map of the same members, for every kind of member.
func TestAppendOrderedMatchesMap(t *testing.T) {
	obj := pipeline.NewObject(
		pipeline.String("s", "x\u2028\x00\xfe\""),
		pipeline.Int("i", -3),
		pipeline.Int64("i64", math.MinInt64),
		pipeline.Uint64("u64", math.MaxUint64),
		pipeline.Float64("f", 1e-7),
		pipeline.Float64("nan", math.NaN()),
		pipeline.Bool("b", true),
		pipeline.Bool("nb", false),
		pipeline.Any("nil", nil),
		pipeline.Any("ip", netip.MustParseAddr("::1")),
		pipeline.Any("m", pipeline.M{"z": 1, "a": pipeline.NewObject()}),
		pipeline.Any("o", pipeline.NewObject(pipeline.String("k", "v"))),
		pipeline.Any("list", []string{"a"}),
	)
	got := encode(pipeline.M{"obj": obj})
	want := encode(pipeline.M{"obj": pipeline.M{"obj": obj}.Unshared()["obj"]})
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !strings.Contains(got, `"nan":null`) {
		t.Errorf("NaN not written as null: %s", got)
	}
	if got := encode(pipeline.M{"o": (*pipeline.Object)(nil)}); !strings.HasSuffix(got, `"o":null}`) {
		t.Errorf("nil object: %s", got)
	}
}

func TestAppendEventLayout(t *testing.T) {
	e := pipeline.Event{
		Timestamp: time.Date(2026, 11, 27, 5, 5, 34, 123999999, time.FixedZone("CET", 3600)),
		Fields:    pipeline.M{"b": 1, "a": 2, "@timestamp": "dup", "@metadata": "dup"},
		ID:        "abc",
		Meta:      pipeline.M{"version": "from-meta"},
	}
	cases := []struct {
		name string
		e    pipeline.Event
		opts Options
		want string
	}{
		{"no metadata by default", e, Options{},
			`{"@timestamp":"2026-11-27T04:05:34.123Z","a":2,"b":1}`},
		{"metadata sorted with extras, Meta wins", e, Options{Metadata: true, Beat: "fleutanbeat", Type: "_doc", Version: "9.0.0"},
			`{"@timestamp":"2026-11-27T04:05:34.123Z","@metadata":{"_id":"abc","beat":"fleutanbeat","type":"_doc","version":"from-meta"},"a":2,"b":1}`},
		{"metadata empty is omitted", pipeline.Event{Timestamp: e.Timestamp}, Options{Metadata: true},
			`{"@timestamp":"2026-11-27T04:05:34.123Z"}`},
		{"extras alone make metadata", pipeline.Event{Timestamp: e.Timestamp}, Options{Metadata: true, Beat: "fleutanbeat"},
			`{"@timestamp":"2026-11-27T04:05:34.123Z","@metadata":{"beat":"fleutanbeat"}}`},
		{"zero timestamp", pipeline.Event{Fields: pipeline.M{"x": 1}}, Options{},
			`{"@timestamp":"0001-01-01T00:00:00.000Z","x":1}`},
		{"year beyond 9999", pipeline.Event{Timestamp: time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)}, Options{},
			`{"@timestamp":"12345-01-01T00:00:00.000Z"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(AppendEvent([]byte("prefix:"), &c.e, c.opts))
			if got != "prefix:"+c.want {
				t.Errorf("got  %s\nwant prefix:%s", got, c.want)
			}
		})
	}
}

func TestAppendEventCycleDoesNotOverflow(t *testing.T) {
	m := pipeline.M{}
	m["self"] = m
	got := encode(m)
	if !json.Valid([]byte(got)) {
		t.Fatalf("invalid JSON: %.200s", got)
	}
	if !strings.Contains(got, `"codec: object nested deeper than 64 levels"`) {
		t.Errorf("missing depth error in %.200s", got)
	}
	// The document itself plus 64 nested objects.
	if n := strings.Count(got, `"self"`); n != 65 {
		t.Errorf("got %d \"self\" keys, want 65", n)
	}
}

func TestAppendEventFlowGolden(t *testing.T) {
	e := codectest.FlowEvent(7)
	for _, c := range []struct {
		file   string
		append func([]byte, *pipeline.Event, Options) []byte
	}{
		{"flow.json", AppendEvent},
		{"flow.pretty.json", AppendPretty},
	} {
		t.Run(c.file, func(t *testing.T) {
			got := c.append(nil, &e, Options{Metadata: true, Beat: "fleutanbeat", Type: "_doc", Version: "0.1.0"})
			got = append(got, '\n')
			path := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestAppendPrettyMatchesMarshalIndent(t *testing.T) {
	e := pipeline.Event{Timestamp: ts, Fields: pipeline.M{"b": []any{}, "a": pipeline.M{"x": []string{"1", "2"}, "e": pipeline.M{}}}}
	got := string(AppendPretty(nil, &e, Options{}))
	want, _ := json.MarshalIndent(map[string]any{
		"@timestamp": "2026-11-27T04:05:34.123Z",
		"a":          map[string]any{"e": map[string]any{}, "x": []string{"1", "2"}},
		"b":          []any{},
	}, "", "  ")
	if got != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAppendEventRoundTrip(t *testing.T) {
	e := codectest.FlowEvent(3)
	b := AppendEvent(nil, &e, Options{})
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, b)
	}
	// Expected: the same document through encoding/json, with the values
	// that encoding/json writes differently normalised first.
	want := map[string]any{}
	raw := stdJSON(t, e.Fields)
	if err := json.Unmarshal([]byte(raw), &want); err != nil {
		t.Fatal(err)
	}
	want["@timestamp"] = "2026-11-27T04:05:34.126Z"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs\ngot  %v\nwant %v", got, want)
	}
	if n := len(got["fleutan"].(map[string]any)["flow"].(map[string]any)["tcp"].(map[string]any)); n != 19 {
		t.Errorf("tcp fields: got %d, want 19", n)
	}
}

func TestAppendEventNoAllocsWithReusedBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	e := codectest.FlowEvent(1)
	buf := AppendEvent(nil, &e, Options{Metadata: true, Beat: "fleutanbeat"})
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendEvent(buf[:0], &e, Options{Metadata: true, Beat: "fleutanbeat"})
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per event, want 0", allocs)
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("key", "value", int64(1), 1.5, true)
	f.Add("", "\xff\u2028\"\\<", int64(-1), math.NaN(), false)
	f.Add("a.b", "\x00\x1f", int64(math.MaxInt64), 1e-7, true)
	f.Fuzz(func(t *testing.T, key, val string, n int64, fl float64, b bool) {
		fields := pipeline.M{
			key:      val,
			"nested": pipeline.M{val: n, key: []any{val, b, uint64(n)}},
			"list":   []string{key, val},
		}
		if !math.IsNaN(fl) && !math.IsInf(fl, 0) {
			fields["float"] = fl
		}
		// The same values as an ordered object, built out of order.
		fields["object"] = pipeline.NewObject(pipeline.Uint64("u", uint64(n)), pipeline.String(val, key),
			pipeline.Int64(key, n), pipeline.Bool("b", b), pipeline.Any("l", []string{val}))
		if key == "@timestamp" || key == "@metadata" {
			t.Skip("reserved top-level key")
		}
		e := pipeline.Event{Timestamp: time.Unix(0, n), Fields: fields, Meta: pipeline.M{key: val}}
		got := AppendEvent(nil, &e, Options{Metadata: true})
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %q", got)
		}
		// Everything after @timestamp and @metadata must be encoding/json's
		// bytes, and the whole document must decode to the same values.
		wantFields := stdJSON(t, fields)
		wantMeta := stdJSON(t, e.Meta)
		want := `,"@metadata":` + wantMeta + `,` + strings.TrimPrefix(wantFields, "{")
		if i := bytes.IndexByte(got, ','); i < 0 || string(got[i:]) != want {
			t.Fatalf("got  %s\nwant ...%s", got, want)
		}
		var back map[string]any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		var wantBack map[string]any
		if err := json.Unmarshal([]byte(wantFields), &wantBack); err != nil {
			t.Fatal(err)
		}
		tsv, _ := time.Parse(time.RFC3339, back["@timestamp"].(string))
		if d := e.Timestamp.Sub(tsv); d < 0 || d >= time.Millisecond {
			t.Errorf("@timestamp %v is not %v truncated to ms", back["@timestamp"], e.Timestamp)
		}
		delete(back, "@timestamp")
		delete(back, "@metadata")
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("decoded %v, want %v", back, wantBack)
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	e := codectest.FlowEvent(1)
	opts := Options{Metadata: true, Beat: "fleutanbeat", Type: "_doc", Version: "0.1.0"}
	buf := AppendEvent(nil, &e, opts)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], &e, opts)
	}
}

func TestNeedsEscapeMatchesByteTest(t *testing.T) {
	plain := []byte("abcdefgh")
	for b := 0; b < 256; b++ {
		want := b < 0x20 || b == '"' || b == '\\' || b >= 0x80
		for pos := range 8 {
			w := append([]byte(nil), plain...)
			w[pos] = byte(b)
			var x uint64
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			if got := needsEscape(x); got != want {
				t.Fatalf("byte %#x at %d: got %v, want %v", b, pos, got, want)
			}
		}
	}
}
