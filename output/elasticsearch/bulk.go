package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// bulkFilterPath trims the bulk reply to what the output reads, as Beats
// does: a 1600-item reply shrinks from ~300 KB to a few KB.
var bulkFilterPath = []string{"errors", "items.*.error", "items.*.status"}

// itemResult is the outcome of one bulk action.
type itemResult struct {
	Status int
	// Type and Reason come from the item's error object, when any.
	Type, Reason string
}

// bulkReply is the filtered bulk response.
type bulkReply struct {
	Errors bool              `json:"errors"`
	Items  []json.RawMessage `json:"items"`
}

type itemBody struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

type itemError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

var errBadReply = errors.New("bad bulk reply")

// parseBulkReply reads the reply to a bulk request of n actions. When
// Elasticsearch says there were no errors every action succeeded and items
// is nil; otherwise items has exactly n entries. A reply that cannot be
// trusted (not JSON, wrong item count, an item without a status) is an
// error: the whole request is then retried, which is safe because every
// action is a create with a fixed _id.
func parseBulkReply(body []byte, n int) (items []itemResult, err error) {
	var r bulkReply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReply, err)
	}
	if !r.Errors {
		// filter_path drops items only when they were empty; a reply
		// with a different count is not for this request.
		if r.Items != nil && len(r.Items) != n {
			return nil, fmt.Errorf("%w: %d items for %d actions", errBadReply, len(r.Items), n)
		}
		return nil, nil
	}
	if len(r.Items) != n {
		return nil, fmt.Errorf("%w: %d items for %d actions", errBadReply, len(r.Items), n)
	}
	items = make([]itemResult, n)
	for i, raw := range r.Items {
		// Each item is {"<action>": {...}} with exactly one key.
		var wrap map[string]itemBody
		if err := json.Unmarshal(raw, &wrap); err != nil || len(wrap) != 1 {
			return nil, fmt.Errorf("%w: item %d is not {action: {...}}", errBadReply, i)
		}
		for _, ib := range wrap {
			if ib.Status < 100 || ib.Status > 599 {
				return nil, fmt.Errorf("%w: item %d has status %d", errBadReply, i, ib.Status)
			}
			items[i] = itemResult{Status: ib.Status}
			if len(ib.Error) > 0 && !bytes.Equal(ib.Error, []byte("null")) {
				var ie itemError
				if json.Unmarshal(ib.Error, &ie) != nil {
					// Old servers sent the error as a plain string.
					var s string
					_ = json.Unmarshal(ib.Error, &s)
					ie.Reason = s
				}
				items[i].Type, items[i].Reason = ie.Type, ie.Reason
			}
		}
	}
	return items, nil
}

// Item outcomes. Like Logstash's Elasticsearch output, only errors about
// the document itself are final: whatever an operator can fix (a write
// block, a missing privilege) or the cluster recovers from (429, 5xx), and
// whatever the output does not know, is retried, since a dropped event
// cannot come back.
type outcome uint8

const (
	outStored outcome = iota
	outDuplicate
	outRetry
	// outBlocked is a retry that waits on an operator: a write block or
	// a missing privilege.
	outBlocked
	outNonIndexable
)

// documentErrors are the 400 error types that say the document cannot be
// indexed as it is (a value the mapping refuses, an unknown field under
// strict mapping).
var documentErrors = map[string]bool{
	"mapper_parsing_exception":         true,
	"document_parsing_exception":       true,
	"illegal_argument_exception":       true,
	"strict_dynamic_mapping_exception": true,
}

// typeTooLarge is the error type the output gives an event whose bulk
// request alone is refused with 413: Elasticsearch answers with an empty
// body, so there is no type of its own.
const typeTooLarge = "request_too_large"

func classify(status int, typ string) outcome {
	switch {
	case status >= 200 && status < 300:
		return outStored
	case status == 409:
		return outDuplicate
	case status == 400 && documentErrors[typ]:
		return outNonIndexable
	case status == 404 && typ == "index_not_found_exception":
		// The target does not exist and may not be created
		// (action.auto_create_index, require_alias).
		return outNonIndexable
	case status == 413 && typ == typeTooLarge:
		return outNonIndexable
	case status == 403 && (typ == "cluster_block_exception" || typ == "security_exception"):
		return outBlocked
	}
	return outRetry
}

// appendAction appends a create action line with _index and _id. _id
// comes from the pipeline (base64url, no quoting needed) but is escaped
// anyway so a processor that set an odd id cannot break the body.
func appendAction(dst, index []byte, id string) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = appendJSONString(dst, index)
	if id != "" {
		dst = append(dst, `,"_id":`...)
		dst = appendJSONString(dst, []byte(id))
	}
	return append(dst, "}}\n"...)
}

func appendJSONString(dst, s []byte) []byte {
	plain := true
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(string(s))
	return append(dst, q...)
}
