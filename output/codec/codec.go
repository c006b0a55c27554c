// Package codec encodes pipeline events as JSON documents for every output
// (file, console, Elasticsearch bulk bodies, Logstash). The encoding is
// deterministic: "@timestamp" first, then "@metadata", then the fields with
// keys sorted at every level, so golden files and retried bulk bodies are
// byte-for-byte stable.
package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// Options selects what AppendEvent writes besides @timestamp and the fields.
type Options struct {
	// Metadata writes "@metadata" (the event's ID as "_id", its Meta, plus the
	// fields below). Elasticsearch bulk bodies leave it out: @metadata is
	// never indexed.
	Metadata bool
	// Beat, Type and Version are added to @metadata as "beat", "type" and
	// "version" when non-empty, as Beats does for Logstash (whose pipelines
	// route on [@metadata][beat]) and for its file and console outputs.
	// A key of the same name in the event's Meta wins.
	Beat, Type, Version string
}

// maxDepth bounds nesting so that a document that contains itself (a
// processor bug) ends as an error string instead of a stack overflow.
// encoding/json reports cycles after 1000 levels; no real event comes near 64.
const maxDepth = 64

// timeLayout is the layout Beats uses for @timestamp and every other time
// (libbeat common.Time): UTC with exactly three fractional digits.
const timeLayout = "2006-01-02T15:04:05.000Z"

// kv is one member of an object being written; sorting a slice of them
// avoids a second map lookup per key.
type kv struct {
	k string
	v any
	// s holds the value when v is literal{}: boxing a string in an
	// interface would allocate.
	s string
}

// literal marks a kv whose value is its s field.
type literal struct{}

// encoder carries nothing between calls: each object's members are
// gathered in an array on that call's stack, where storing pointers needs
// no GC write barriers (a heap scratch slice paid one per pointer while a
// collection ran, which at high event rates is most of the time).
type encoder struct{}

// stackMembers is the object size kept on the stack; events' objects hold
// a handful to twenty keys, larger ones spill to the heap.
const stackMembers = 32

// AppendEvent appends e as one JSON object (no trailing newline) to dst.
// An event the pipeline has encoded (Fields nil, Body set) costs a copy.
// Keys "@timestamp" and "@metadata" inside e.Fields are skipped: they are
// written from e.Timestamp and e.Meta, and a duplicate key would make the
// document invalid for Elasticsearch.
func AppendEvent(dst []byte, e *pipeline.Event, opts Options) []byte {
	var enc encoder
	return enc.appendEvent(dst, e, &opts)
}

// AppendPretty appends e like AppendEvent, indented by two spaces per level
// as encoding/json.MarshalIndent(v, "", "  ") does. It is meant for humans
// (console `pretty: true`) and allocates.
func AppendPretty(dst []byte, e *pipeline.Event, opts Options) []byte {
	compact := AppendEvent(nil, e, opts)
	buf := bytes.NewBuffer(dst)
	if err := json.Indent(buf, compact, "", "  "); err != nil {
		// AppendEvent only writes valid JSON; should that ever break, the
		// compact document is still better than nothing.
		return append(dst, compact...)
	}
	return buf.Bytes()
}

// AppendFields appends the members of fields ("k":v pairs, sorted, without
// the enclosing braces) to dst: the form the pipeline stores in Event.Body
// once processors have run, so that every output splices it instead of
// encoding the maps again.
func AppendFields(dst []byte, fields pipeline.M) []byte {
	var enc encoder
	return enc.appendRoot(dst, fields, false)
}

// appendRoot writes the top-level fields, leaving out the two keys that
// stand beside them in the document.
func (enc *encoder) appendRoot(dst []byte, fields pipeline.M, leadingComma bool) []byte {
	var stack [stackMembers]kv
	ms := stack[:0]
	if len(fields) > stackMembers {
		ms = make([]kv, 0, len(fields))
	}
	for k, v := range fields {
		if k == "@timestamp" || k == "@metadata" {
			continue
		}
		ms = append(ms, kv{k: k, v: v})
	}
	return enc.appendMembers(dst, ms, leadingComma, 1)
}

func (enc *encoder) appendEvent(dst []byte, e *pipeline.Event, opts *Options) []byte {
	dst = append(dst, `{"@timestamp":`...)
	dst = appendTime(dst, e.Timestamp)
	if opts.Metadata {
		dst = enc.appendMeta(dst, e.ID, e.Meta, opts)
	}
	if e.Fields == nil && e.Body != nil {
		if len(e.Body) > 0 {
			dst = append(dst, ',')
			dst = append(dst, e.Body...)
		}
		return append(dst, '}')
	}
	dst = enc.appendRoot(dst, e.Fields, true)
	return append(dst, '}')
}

func (enc *encoder) appendMeta(dst []byte, id string, meta pipeline.M, opts *Options) []byte {
	// The common case, an event with only its id going to Logstash or a
	// file, is written directly: keys in sorted order ("_id" < "beat" <
	// "type" < "version"), no map walk, no sort.
	if id != "" && len(meta) == 0 && opts.Beat != "" && opts.Type != "" && opts.Version != "" {
		dst = append(dst, `,"@metadata":{"_id":`...)
		dst = appendString(dst, id)
		dst = append(dst, `,"beat":`...)
		dst = appendString(dst, opts.Beat)
		dst = append(dst, `,"type":`...)
		dst = appendString(dst, opts.Type)
		dst = append(dst, `,"version":`...)
		dst = appendString(dst, opts.Version)
		return append(dst, '}')
	}
	var stack [stackMembers]kv
	ms := stack[:0]
	add := func(k, v string) {
		if v == "" {
			return
		}
		if _, ok := meta[k]; ok {
			return
		}
		ms = append(ms, kv{k: k, v: literal{}, s: v})
	}
	add("beat", opts.Beat)
	add("type", opts.Type)
	add("version", opts.Version)
	if id != "" {
		ms = append(ms, kv{k: "_id", v: literal{}, s: id})
	}
	for k, v := range meta {
		if k == "_id" && id != "" {
			continue // Event.ID wins
		}
		ms = append(ms, kv{k: k, v: v})
	}
	if len(ms) == 0 {
		return dst
	}
	dst = append(dst, `,"@metadata":{`...)
	dst = enc.appendMembers(dst, ms, false, 2)
	return append(dst, '}')
}

// appendMembers sorts ms by key and writes them as "k":v pairs.
// leadingComma is set when something precedes the first pair.
func (enc *encoder) appendMembers(dst []byte, ms []kv, leadingComma bool, depth int) []byte {
	sortMembers(ms)
	for i := range ms {
		if i > 0 || leadingComma {
			dst = append(dst, ',')
		}
		m := &ms[i]
		dst = appendString(dst, m.k)
		dst = append(dst, ':')
		if _, ok := m.v.(literal); ok {
			dst = appendString(dst, m.s)
		} else {
			dst = enc.appendValue(dst, m.v, depth)
		}
	}
	return dst
}

// sortMembers orders by key. Objects in events are small (a handful to
// twenty keys), where an insertion sort beats the generic sort.
func sortMembers(ms []kv) {
	if len(ms) > 24 {
		slices.SortFunc(ms, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(ms); i++ {
		x := ms[i]
		j := i
		for j > 0 && keyLess(x.k, ms[j-1].k) {
			ms[j] = ms[j-1]
			j--
		}
		ms[j] = x
	}
}

// keyLess is a < b with the first byte compared inline: sibling keys
// usually differ there, which saves the runtime's string comparison call.
func keyLess(a, b string) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

func (enc *encoder) appendObject(dst []byte, m map[string]any, depth int) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	if depth > maxDepth {
		return appendString(dst, fmt.Sprintf("codec: object nested deeper than %d levels", maxDepth))
	}
	var stack [stackMembers]kv
	ms := stack[:0]
	if len(m) > stackMembers {
		ms = make([]kv, 0, len(m))
	}
	for k, v := range m {
		ms = append(ms, kv{k: k, v: v})
	}
	dst = append(dst, '{')
	dst = enc.appendMembers(dst, ms, false, depth+1)
	return append(dst, '}')
}

// appendOrdered writes an *pipeline.Object: its members are already in key
// order and its scalars unboxed, so there is nothing to gather or sort.
func (enc *encoder) appendOrdered(dst []byte, o *pipeline.Object, depth int) []byte {
	if o == nil {
		return append(dst, "null"...)
	}
	if depth > maxDepth {
		return appendString(dst, fmt.Sprintf("codec: object nested deeper than %d levels", maxDepth))
	}
	dst = append(dst, '{')
	for i := range o.Len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		m := o.At(i)
		dst = appendString(dst, m.Key)
		dst = append(dst, ':')
		switch m.Kind() {
		case pipeline.KindString:
			dst = appendString(dst, m.Str())
		case pipeline.KindInt, pipeline.KindInt64:
			dst = strconv.AppendInt(dst, m.Int64(), 10)
		case pipeline.KindUint64:
			dst = strconv.AppendUint(dst, m.Uint64(), 10)
		case pipeline.KindFloat64:
			dst = appendFloat(dst, m.Float64(), 64)
		case pipeline.KindBool:
			dst = strconv.AppendBool(dst, m.Bool())
		default:
			dst = enc.appendValue(dst, m.Any(), depth+1)
		}
	}
	return append(dst, '}')
}

func (enc *encoder) appendValue(dst []byte, v any, depth int) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, t)
	case bool:
		return strconv.AppendBool(dst, t)
	case int:
		return strconv.AppendInt(dst, int64(t), 10)
	case int8:
		return strconv.AppendInt(dst, int64(t), 10)
	case int16:
		return strconv.AppendInt(dst, int64(t), 10)
	case int32:
		return strconv.AppendInt(dst, int64(t), 10)
	case int64:
		return strconv.AppendInt(dst, t, 10)
	case uint:
		return strconv.AppendUint(dst, uint64(t), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(t), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(t), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(t), 10)
	case uint64:
		return strconv.AppendUint(dst, t, 10)
	case uintptr:
		return strconv.AppendUint(dst, uint64(t), 10)
	case float64:
		return appendFloat(dst, t, 64)
	case float32:
		return appendFloat(dst, float64(t), 32)
	case time.Time:
		return appendTime(dst, t)
	case time.Duration:
		return strconv.AppendInt(dst, int64(t), 10)
	case netip.Addr:
		return appendAddr(dst, t)
	case netip.AddrPort:
		if !t.Addr().IsValid() {
			// netip.AddrPort.MarshalText writes "" for the zero value.
			return append(dst, `""`...)
		}
		dst = append(dst, '"')
		dst = t.AppendTo(dst)
		return append(dst, '"')
	case net.IP:
		return appendNetIP(dst, t)
	case pipeline.M:
		return enc.appendObject(dst, t, depth)
	case *pipeline.Object:
		return enc.appendOrdered(dst, t, depth)
	case *pipeline.Shared:
		// Shared objects never change: encode once, then copy.
		if b := t.Encoding(); b != nil {
			return append(dst, b...)
		}
		b := enc.appendObject(nil, t.Object(), depth)
		t.SetEncoding(b)
		return append(dst, b...)
	case map[string]any:
		return enc.appendObject(dst, t, depth)
	case []string:
		return appendArray(dst, t, appendString)
	case []int64:
		return appendArray(dst, t, func(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) })
	case []uint64:
		return appendArray(dst, t, func(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) })
	case []any:
		if t != nil && depth > maxDepth {
			return appendString(dst, fmt.Sprintf("codec: array nested deeper than %d levels", maxDepth))
		}
		return appendArray(dst, t, func(dst []byte, e any) []byte { return enc.appendValue(dst, e, depth+1) })
	}
	return appendFallback(dst, v)
}

// appendArray writes a JSON array of elems, or null for a nil slice as
// encoding/json does.
func appendArray[E any](dst []byte, elems []E, appendElem func([]byte, E) []byte) []byte {
	if elems == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendElem(dst, e)
	}
	return append(dst, ']')
}

// appendFloat writes f as encoding/json does (ES6 number formatting), except
// that NaN and ±Inf, which JSON cannot represent, become null instead of an
// error: one odd gauge must not cost the whole event.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendTime writes t in UTC with millisecond precision, the format Beats
// writes and Elasticsearch's date type parses without a custom format.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, timeLayout)
		return append(dst, '"')
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	dst = append(dst, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
	return dst
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		// netip.Addr.MarshalText writes "" for the zero value.
		return append(dst, `""`...)
	}
	// Digits, dots and colons never need escaping; an IPv6 zone is free
	// text (an interface name) and might.
	if a.Zone() != "" {
		var tmp [64]byte
		return appendString(dst, string(a.AppendTo(tmp[:0])))
	}
	dst = append(dst, '"')
	dst = a.AppendTo(dst)
	return append(dst, '"')
}

// appendNetIP writes ip as net.IP.MarshalText does: "" when empty, the
// dotted form for IPv4 and IPv4-mapped IPv6 addresses.
func appendNetIP(dst []byte, ip net.IP) []byte {
	if len(ip) == 0 {
		return append(dst, `""`...)
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		// net.IP.MarshalText fails on a bad length; String still describes it.
		return appendString(dst, ip.String())
	}
	return appendAddr(dst, a.Unmap())
}

// appendFallback encodes any other type with encoding/json. A marshal
// error or a panic in a MarshalJSON method becomes a string describing it:
// the event still goes out, and the problem is visible in the document.
func appendFallback(dst []byte, v any) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			out = appendString(dst, fmt.Sprintf("codec: cannot encode %T: panic: %v", v, r))
		}
	}()
	var buf bytes.Buffer
	je := json.NewEncoder(&buf)
	je.SetEscapeHTML(false)
	if err := je.Encode(v); err != nil {
		return appendString(dst, fmt.Sprintf("codec: cannot encode %T: %v", v, err))
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// safe marks ASCII bytes copied unchanged into a JSON string: printable
// characters except '"' and '\\' (RFC 8259 section 7). HTML characters are
// not escaped: the documents are never embedded in HTML.
var safe = func() (s [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		s[b] = b != '"' && b != '\\'
	}
	return s
}()

const hexDigits = "0123456789abcdef"

const (
	lo7 = 0x0101010101010101
	hi7 = 0x8080808080808080
)

// needsEscape reports whether any of the eight bytes in x is below 0x20,
// '"', '\\' or not ASCII, with the word-at-a-time tests of "Bit Twiddling
// Hacks" (hasless, haszero): a byte equals c where x^(lo7*c) has a zero byte.
// The tests are exact as to whether such a byte exists.
func needsEscape(x uint64) bool {
	quote := x ^ (lo7 * '"')
	backslash := x ^ (lo7 * '\\')
	return ((x-lo7*0x20)&^x|(quote-lo7)&^quote|(backslash-lo7)&^backslash|x)&hi7 != 0
}

// appendString writes s as a JSON string exactly as encoding/json does with
// HTML escaping off: invalid UTF-8 bytes become U+FFFD and U+2028/U+2029
// are escaped for JavaScript consumers.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	i := 0
	// Skip eight plain bytes at a time: most keys and values need no
	// escaping at all.
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if needsEscape(x) {
			break
		}
	}
	for i < len(s) {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
