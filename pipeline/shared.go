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

// AsObject returns a nested object of any spelling as M: M,
// map[string]any, or the read-only view of a *Shared.
func AsObject(v any) (M, bool) {
	switch t := v.(type) {
	case M:
		return t, true
	case map[string]any:
		return M(t), true
	case *Shared:
		return t.m, true
	}
	return nil, false
}

// MutableObject returns the object at key (one level) for writing: a
// *Shared is replaced by a private copy first. It reports false when key
// holds no object.
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
	}
	return nil, false
}

// Unshared returns a deep copy in which every *Shared is a plain M: for
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
