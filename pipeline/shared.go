package pipeline

import "sync/atomic"

// Shared is an object that many events carry unchanged: host and agent
// metadata. Events hold the same *Shared, so adding it costs no copy;
// reading through it (GetValue, conditions) sees its fields; writing into it
// (Put, Delete, a processor merging into it) first replaces it in that one
// event with a private copy, so no event can change another's (copy on
// write). Encoders may cache its encoding, since it never changes.
type Shared struct {
	m   M
	enc atomic.Pointer[[]byte]
}

// NewShared freezes a deep copy of m.
func NewShared(m M) *Shared { return &Shared{m: m.Clone()} }

// Object is a read-only view: callers must not modify it.
func (s *Shared) Object() M { return s.m }

// Encoding returns the cached encoding, nil before SetEncoding.
func (s *Shared) Encoding() []byte {
	if p := s.enc.Load(); p != nil {
		return *p
	}
	return nil
}

// SetEncoding caches the object's encoding (the caller's; not copied).
func (s *Shared) SetEncoding(b []byte) { s.enc.Store(&b) }

// MarshalJSON encodes the object for code that uses encoding/json.
func (s *Shared) MarshalJSON() ([]byte, error) { return marshalJSON(s.m) }

// AsObject returns a nested object of any spelling as M, for reading: M,
// map[string]any, the read-only view of a *Shared, or a copy of an
// *Object's members (so writes to the result do not reach the event).
func AsObject(v any) (M, bool) {
	switch t := v.(type) {
	case M:
		return t, true
	case map[string]any:
		return M(t), true
	case *Shared:
		return t.m, true
	case *Object:
		return t.M(), true
	}
	return nil, false
}

// MutableObject returns the object at key (one level) for writing as M: a
// *Shared is replaced by a private copy first, an *Object by an M of its
// members (M.Put and M.Delete write into an *Object in place instead). It
// reports false when key holds no object.
func (m M) MutableObject(key string) (M, bool) {
	switch t := m[key].(type) {
	case M:
		return t, true
	case map[string]any:
		return M(t), true
	case *Shared:
		cp := t.m.Clone()
		m[key] = cp
		return cp, true
	case *Object:
		cp := t.M()
		m[key] = cp
		return cp, true
	}
	return nil, false
}

// Unshared returns a deep copy in which every *Shared and *Object is a
// plain M: for
// comparisons and for code that needs ordinary maps.
func (m M) Unshared() M {
	out := make(M, len(m))
	for k, v := range m {
		if sub, ok := AsObject(v); ok {
			out[k] = sub.Unshared()
			continue
		}
		out[k] = v
	}
	return out
}
