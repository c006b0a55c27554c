package diskqueue

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzScanSegment feeds arbitrary segment bytes to the segment reader: it
// never panics, damaged ranges and the cut lie inside the input, and every
// frame it counts decodes or is rejected without panic.
func FuzzScanSegment(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.seg"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for i := range 3 {
		e := event(i)
		b, _ := appendRecord(nil, &e)
		f.Add(b)
		f.Add(append(b, b[:len(b)/2]...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := scanSegment(b)
		if r.End < 0 || r.End > int64(len(b)) {
			t.Fatalf("end %d outside [0,%d]", r.End, len(b))
		}
		prev := int64(0)
		for _, sp := range r.Bad {
			if sp.Off < prev || sp.End <= sp.Off || sp.End > int64(len(b)) {
				t.Fatalf("bad span %v after %d in %d bytes", sp, prev, len(b))
			}
			prev = sp.End
		}
		n := 0
		for off := 0; off < int(r.End); {
			skipped := false
			for _, sp := range r.Bad {
				if int64(off) == sp.Off {
					off = int(sp.End)
					skipped = true
				}
			}
			if skipped {
				continue
			}
			p, l, ok := frameAt(b[off:r.End])
			if !ok {
				t.Fatalf("no frame at %d though scan counted one", off)
			}
			_, _ = decodeEvent(p)
			off += l
			n++
		}
		if n != r.Records {
			t.Fatalf("walked %d frames, scan counted %d", n, r.Records)
		}
	})
}
