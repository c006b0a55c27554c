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
	// Meta is carried as @metadata: never indexed as a field; holds "_id".
	Meta M
	// Series identifies the time series this event belongs to (for a flow its
	// 5-tuple, inode and netns). Together with the agent id, dataset and
	// timestamp it makes the deterministic event id. Not serialised.
	Series string
}

// GetValue returns the value at a dotted path.
func (m M) GetValue(key string) (any, bool) {
	cur := m
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			v, ok := cur[key]
			return v, ok
		}
		next, ok := asM(cur[key[:i]])
		if !ok {
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
	cur := m
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			cur[key] = v
			return
		}
		head := key[:i]
		next, ok := cur.MutableObject(head)
		if !ok {
			next = M{}
			cur[head] = next
		}
		cur, key = next, key[i+1:]
	}
}

// Delete removes the value at a dotted path and reports whether it existed.
func (m M) Delete(key string) bool {
	cur := m
	for {
		i := strings.IndexByte(key, '.')
		if i < 0 {
			_, ok := cur[key]
			delete(cur, key)
			return ok
		}
		if _, ok := asM(cur[key[:i]]); !ok {
			return false
		}
		// Only a path that exists is made private: deleting what is not
		// there must not copy a shared object.
		if _, ok := M(cur).GetValue(key); !ok {
			return false
		}
		next, _ := cur.MutableObject(key[:i])
		cur, key = next, key[i+1:]
	}
}

// Clone returns a deep copy of the nested objects; leaf values are shared,
// which is safe because leaves are immutable scalars or slices that
// processors replace rather than modify.
func (m M) Clone() M {
	out := make(M, len(m))
	for k, v := range m {
		if _, shared := v.(*Shared); shared {
			out[k] = v // immutable: copied only when written
			continue
		}
		if sub, ok := asM(v); ok {
			out[k] = sub.Clone()
			continue
		}
		out[k] = v
	}
	return out
}

// Flatten calls fn for every leaf with its dotted path.
func (m M) Flatten(fn func(key string, v any)) {
	m.flatten("", fn)
}

func (m M) flatten(prefix string, fn func(string, any)) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := asM(v); ok {
			sub.flatten(key, fn)
			continue
		}
		fn(key, v)
	}
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
