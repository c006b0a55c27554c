package diskqueue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// A record on disk is a frame
//
//	len uint32 LE | crc uint32 LE | payload (len bytes)
//
// where crc is CRC-32C (Castagnoli) over the length bytes and the payload,
// so a flipped length is caught like a flipped payload byte. The payload is
//
//	version byte (1) | timestamp varint (unix ns) | dataset, series (uvarint
//	length + bytes) | meta kind byte, meta (uvarint length + bytes) | body
//
// meta kind 0 is no metadata, 1 an "_id" alone (the usual case), 2 JSON.
const (
	headerLen  = 8
	version1   = 1
	maxPayload = 64 << 20
	metaNone   = 0
	metaID     = 1
	metaJSON   = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadRecord = errors.New("diskqueue: malformed record")

// appendRecord appends the frame of e to dst.
func appendRecord(dst []byte, e *pipeline.Event) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, headerLen)...)
	dst = append(dst, version1)
	dst = binary.AppendVarint(dst, e.Timestamp.UnixNano())
	dst = appendString(dst, e.Dataset)
	dst = appendString(dst, e.Series)
	switch {
	case len(e.Meta) == 0 && e.ID == "":
		dst = append(dst, metaNone)
	case len(e.Meta) == 0:
		dst = append(dst, metaID)
		dst = appendString(dst, e.ID)
	default:
		meta := e.Meta
		if e.ID != "" {
			// The record format predates Event.ID: the id travels in the
			// @metadata JSON as "_id".
			meta = maps.Clone(e.Meta)
			meta["_id"] = e.ID
		}
		b, err := json.Marshal(meta)
		if err != nil {
			return dst[:start], fmt.Errorf("diskqueue: encode @metadata: %w", err)
		}
		dst = append(dst, metaJSON)
		dst = appendString(dst, string(b))
	}
	if e.Body != nil || e.Fields == nil {
		dst = append(dst, e.Body...)
	} else {
		// Without the pipeline's encoder the fields are stored as the
		// same object members Body would hold.
		b, err := json.Marshal(e.Fields)
		if err != nil {
			return dst[:start], fmt.Errorf("diskqueue: encode fields: %w", err)
		}
		dst = append(dst, b[1:len(b)-1]...)
	}
	n := len(dst) - start - headerLen
	if n > maxPayload {
		return dst[:start], fmt.Errorf("diskqueue: event of %d bytes is larger than the %d bytes a record may hold", n, maxPayload)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], frameCRC(dst[start:start+4], dst[start+headerLen:]))
	return dst, nil
}

func frameCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, length), castagnoli, payload)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// frameAt checks the frame at the start of b and returns its payload and
// total length; ok is false when b does not start with an intact frame.
func frameAt(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < headerLen {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxPayload || uint64(len(b)-headerLen) < uint64(l) {
		return nil, 0, false
	}
	p := b[headerLen : headerLen+int(l)]
	if frameCRC(b[:4], p) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return p, headerLen + int(l), true
}

// span is a byte range [Off, End) of a segment.
type span struct{ Off, End int64 }

// scanResult is what scanSegment learns of a segment file.
type scanResult struct {
	Records int
	Bad     []span // corrupted ranges between intact records, skipped when reading
	End     int64  // end of the last intact record: the file is cut there
	FirstTS time.Time
}

// scanSegment walks the frames of a segment. After a damaged frame it
// resynchronises on the next offset that holds an intact frame, so one
// flipped byte costs one record, not the rest of the segment; with a
// 32-bit CRC over length and payload a false resync is negligible.
func scanSegment(b []byte) scanResult {
	var r scanResult
	off := 0
	for off < len(b) {
		if p, n, ok := frameAt(b[off:]); ok {
			if r.Records == 0 {
				if ts, err := decodeTimestamp(p); err == nil {
					r.FirstTS = ts
				}
			}
			r.Records++
			off += n
			r.End = int64(off)
			continue
		}
		next := off + 1
		for ; next < len(b); next++ {
			if _, _, ok := frameAt(b[next:]); ok {
				break
			}
		}
		if next < len(b) {
			r.Bad = append(r.Bad, span{int64(off), int64(next)})
		}
		off = next
	}
	return r
}

func decodeTimestamp(p []byte) (time.Time, error) {
	if len(p) < 1 || p[0] != version1 {
		return time.Time{}, errBadRecord
	}
	ns, n := binary.Varint(p[1:])
	if n <= 0 {
		return time.Time{}, errBadRecord
	}
	return time.Unix(0, ns), nil
}

// decodeEvent rebuilds an event from a payload; it copies what it keeps,
// so p may be reused.
func decodeEvent(p []byte) (pipeline.Event, error) {
	var e pipeline.Event
	if len(p) < 1 || p[0] != version1 {
		return e, errBadRecord
	}
	rest := p[1:]
	ns, n := binary.Varint(rest)
	if n <= 0 {
		return e, errBadRecord
	}
	rest = rest[n:]
	e.Timestamp = time.Unix(0, ns)
	var ok bool
	if e.Dataset, rest, ok = readString(rest); !ok {
		return e, errBadRecord
	}
	if e.Series, rest, ok = readString(rest); !ok {
		return e, errBadRecord
	}
	if len(rest) < 1 {
		return e, errBadRecord
	}
	kind := rest[0]
	rest = rest[1:]
	switch kind {
	case metaNone:
	case metaID:
		var id string
		if id, rest, ok = readString(rest); !ok {
			return e, errBadRecord
		}
		e.ID = id
	case metaJSON:
		var js string
		if js, rest, ok = readString(rest); !ok {
			return e, errBadRecord
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return e, errBadRecord
		}
		if id, ok := m["_id"].(string); ok {
			e.ID = id
			delete(m, "_id")
		}
		if len(m) > 0 {
			e.Meta = pipeline.M(m)
		}
	default:
		return e, errBadRecord
	}
	e.Body = append(make([]byte, 0, len(rest)), rest...)
	return e, nil
}

func readString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
