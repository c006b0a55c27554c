// Package pipeline carries events from inputs through processors and a queue
// to exactly one output, with per-event acknowledgement.
package pipeline

import (
	"strings"
	"time"
)

// M is a document: nested maps keyed by field name. Dotted paths
// ("source.ip") address nested values; keys themselves never contain dots.
type M map[string]any

// ReservedKeys is how many top-level keys the pipeline may add to an
// event's Fields (agent, data_stream, host, tags, fields): inputs size their
// root map with room for them.
const ReservedKeys = 5

// Event is one document on its way to the output.
type Event struct {
	Timestamp time.Time
	// Fields is the document body (without @timestamp). Inputs and
	// processors work on it; once processors have run, a pipeline with an
	// encoder stores the encoding in Body and sets Fields to nil, so queued
	// events are compact bytes rather than maps for the GC to scan.
	Fields M
	// Body is Fields encoded as JSON object members ("k":v,... without
	// braces), set by the pipeline; outputs splice it (output/codec).
	Body []byte
	// Dataset is event.dataset, kept beside Body for outputs that route by
	// it (Elasticsearch data streams).
	Dataset string
	// ID is the event's id: @metadata._id, and the _id Elasticsearch
	// stores the document under. The pipeline sets it (see eventID) unless
	// the input did.
	ID string
	// Meta is carried as @metadata beside _id: never indexed as a field.
	Meta M
	// Series identifies the time series this event belongs to (for a flow its
	// 5-tuple, inode and netns). Together with the agent id, dataset and
	// timestamp it makes the deterministic event id. Not serialised.
	Series string
}

// GetValue returns the value at a dotted path.
func (m M) GetValue(key string) (any, bool) { return getPath(m, key) }

// GetString returns the string at a dotted path, false when there is none
// or the value is not a string. Unlike GetValue it does not allocate for a
// string an *Object holds.
func (m M) GetString(key string) (string, bool) {
	mem, ok := m.GetMember(key)
	if !ok || mem.kind != KindString {
		if s, isString := mem.val.(string); ok && isString {
			return s, true
		}
		return "", false
	}
	return mem.str, true
}

// GetMember returns the value at a dotted path as a Member (Key unset):
// for hot readers, such as conditions, that switch on its Kind instead of
// boxing a number or string an *Object holds. A value an M holds comes back
// as KindAny.
func (m M) GetMember(key string) (Member, bool) {
	var parent any = m
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		p, ok := getPath(m, key[:i])
		if !ok {
			return Member{}, false
		}
		parent, key = p, key[i+1:]
	}
	if o, ok := parent.(*Object); ok {
		j, found := o.search(key)
		if !found {
			return Member{}, false
		}
		mem := o.ms[j]
		mem.Key = ""
		return mem, true
	}
	v, ok := lookup(parent, key)
	return Member{kind: KindAny, val: v}, ok
}

// HasKey reports whether a dotted path exists.
func (m M) HasKey(key string) bool { return hasPath(m, key) }

// getPath returns the value at a dotted path below cur, an object of any
// spelling.
func getPath(cur any, key string) (any, bool) {
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return lookup(cur, key)
		}
		next, ok := lookup(cur, key[:i])
		if !ok || !isObject(next) {
			return nil, false
		}
		cur, key = next, key[i+1:]
	}
}

// Put sets the value at a dotted path, creating intermediate objects and
// replacing non-object values that stand in the way.
func (m M) Put(key string, v any) {
	if mm, ok := v.(map[string]any); ok {
		v = fromMap(mm)
	}
	var cur any = m
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			set(cur, key, v)
			return
		}
		head := key[:i]
		next, ok := mutableChild(cur, head)
		if !ok {
			nm := M{}
			set(cur, head, nm)
			next = nm
		}
		cur, key = next, key[i+1:]
	}
}

// Delete removes the value at a dotted path and reports whether it existed.
func (m M) Delete(key string) bool {
	// Only a path that exists is made private: deleting what is not there
	// must not copy a shared object.
	if !hasPath(m, key) {
		return false
	}
	var cur any = m
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return del(cur, key)
		}
		cur, _ = mutableChild(cur, key[:i])
		key = key[i+1:]
	}
}

// hasPath reports whether a dotted path exists below cur without reading
// the leaf (reading an *Object's number would allocate).
func hasPath(cur any, key string) bool {
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return has(cur, key)
		}
		next, ok := lookup(cur, key[:i])
		if !ok || !isObject(next) {
			return false
		}
		cur, key = next, key[i+1:]
	}
}

// Clone returns a deep copy of the nested objects; leaf values are shared,
// which is safe because leaves are immutable scalars or slices that
// processors replace rather than modify.
func (m M) Clone() M {
	out := make(M, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

// cloneValue deep-copies an object of any spelling; a *Shared is kept, as
// it is immutable and copied only when written.
func cloneValue(v any) any {
	switch t := v.(type) {
	case M:
		return t.Clone()
	case map[string]any:
		return M(t).Clone()
	case *Object:
		return t.Clone()
	}
	return v
}

// Lookup returns the member key (one level, no dots) of obj, an object of
// any spelling (M, map[string]any, *Shared, *Object), without copying it:
// for processors that walk paths themselves.
func Lookup(obj any, key string) (any, bool) { return lookup(obj, key) }

// IsObject reports whether v is an object of any spelling.
func IsObject(v any) bool { return isObject(v) }

// isObject reports whether v is an object of any spelling.
func isObject(v any) bool {
	switch v.(type) {
	case M, map[string]any, *Shared, *Object:
		return true
	}
	return false
}

// lookup returns the member key of obj, an object of any spelling.
func lookup(obj any, key string) (any, bool) {
	switch t := obj.(type) {
	case M:
		v, ok := t[key]
		return v, ok
	case map[string]any:
		v, ok := t[key]
		return v, ok
	case *Shared:
		v, ok := t.m[key]
		return v, ok
	case *Object:
		return t.Get(key)
	}
	return nil, false
}

func has(obj any, key string) bool {
	if o, ok := obj.(*Object); ok {
		_, found := o.search(key)
		return found
	}
	_, ok := lookup(obj, key)
	return ok
}

// set writes key in obj, which is writable (never a *Shared).
func set(obj any, key string, v any) {
	switch t := obj.(type) {
	case M:
		t[key] = v
	case map[string]any:
		t[key] = v
	case *Object:
		t.Put(key, v)
	}
}

// del removes key from obj, which is writable (never a *Shared).
func del(obj any, key string) bool {
	switch t := obj.(type) {
	case M:
		_, ok := t[key]
		delete(t, key)
		return ok
	case map[string]any:
		_, ok := t[key]
		delete(t, key)
		return ok
	case *Object:
		return t.Delete(key)
	}
	return false
}

// mutableChild returns the object at key in obj for writing, in the
// spelling it has (M or *Object); a *Shared is first replaced in obj by a
// private copy. It reports false when key holds no object.
func mutableChild(obj any, key string) (any, bool) {
	v, ok := lookup(obj, key)
	if !ok {
		return nil, false
	}
	switch t := v.(type) {
	case M, *Object:
		return t, true
	case map[string]any:
		return M(t), true
	case *Shared:
		cp := t.m.Clone()
		set(obj, key, cp)
		return cp, true
	}
	return nil, false
}

// Flatten calls fn for every leaf with its dotted path.
func (m M) Flatten(fn func(key string, v any)) {
	m.flatten("", fn)
}

func (m M) flatten(prefix string, fn func(string, any)) {
	for k, v := range m {
		flattenValue(prefix, k, v, fn)
	}
}

func flattenValue(prefix, k string, v any, fn func(string, any)) {
	key := k
	if prefix != "" {
		key = prefix + "." + k
	}
	if o, ok := v.(*Object); ok {
		for i := range o.ms {
			flattenValue(key, o.ms[i].Key, o.ms[i].Value(), fn)
		}
		return
	}
	if sub, ok := asM(v); ok {
		sub.flatten(key, fn)
		return
	}
	fn(key, v)
}

// asM is AsObject: a read-only view of any spelling of an object.
func asM(v any) (M, bool) { return AsObject(v) }

func fromMap(mm map[string]any) M {
	out := make(M, len(mm))
	for k, v := range mm {
		if sub, ok := v.(map[string]any); ok {
			out[k] = fromMap(sub)
			continue
		}
		out[k] = v
	}
	return out
}

// CloneEvents returns copies of events with private Fields and Meta: what
// a Publisher that keeps events stores, since the input may reuse their
// memory once Publish returns (see Publisher).
func CloneEvents(events []Event) []Event {
	out := make([]Event, len(events))
	for i := range events {
		out[i] = events[i]
		if events[i].Fields != nil {
			out[i].Fields = events[i].Fields.Clone()
		}
		if events[i].Meta != nil {
			out[i].Meta = events[i].Meta.Clone()
		}
	}
	return out
}
