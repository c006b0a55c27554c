package condition

import (
	"net"
	"net/netip"
	"reflect"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// integer classifies an integer field value. Named types such as
// time.Duration fall through to reflect, which does not allocate for
// values already boxed in an interface.
func integer(v any) (i int64, u uint64, signed, ok bool) {
	switch x := v.(type) {
	case int:
		return int64(x), 0, true, true
	case int64:
		return x, 0, true, true
	case int32:
		return int64(x), 0, true, true
	case int16:
		return int64(x), 0, true, true
	case int8:
		return int64(x), 0, true, true
	case uint:
		return 0, uint64(x), false, true
	case uint64:
		return 0, x, false, true
	case uint32:
		return 0, uint64(x), false, true
	case uint16:
		return 0, uint64(x), false, true
	case uint8:
		return 0, uint64(x), false, true
	case string, bool, float64, float32, nil:
		return 0, 0, false, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), 0, true, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return 0, rv.Uint(), false, true
	}
	return 0, 0, false, false
}

// number converts any numeric field value to float64 for range.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	if i, u, signed, ok := integer(v); ok {
		if signed {
			return float64(i), true
		}
		return float64(u), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// parseAddress is address for a string.
func parseAddress(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// numberOf is number for a value read with GetMember: a number an
// *pipeline.Object holds is read without boxing it.
func numberOf(v pipeline.Member) (float64, bool) {
	switch v.Kind() {
	case pipeline.KindInt, pipeline.KindInt64:
		return float64(v.Int64()), true
	case pipeline.KindUint64:
		return float64(v.Uint64()), true
	case pipeline.KindFloat64:
		return v.Float64(), true
	case pipeline.KindAny:
		return number(v.Any())
	}
	return 0, false
}

// address reads an IP field value: netip.Addr as the flows input emits it,
// net.IP, or its text. IPv4-mapped IPv6 addresses compare as IPv4.
func address(v any) (netip.Addr, bool) {
	var a netip.Addr
	switch x := v.(type) {
	case netip.Addr:
		a = x
	case net.IP:
		var ok bool
		if a, ok = netip.AddrFromSlice(x); !ok {
			return netip.Addr{}, false
		}
	case string:
		return parseAddress(x)
	default:
		return netip.Addr{}, false
	}
	if !a.IsValid() {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
