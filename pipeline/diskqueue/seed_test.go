package diskqueue

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.seg")

// TestSeedSegments keeps the fuzz seeds in testdata/ in the current format
// (go test -run TestSeedSegments -update rewrites them).
func TestSeedSegments(t *testing.T) {
	var good []byte
	for i := range 4 {
		e := event(i)
		var err error
		if good, err = appendRecord(good, &e); err != nil {
			t.Fatal(err)
		}
	}
	torn := append([]byte(nil), good[:len(good)-100]...)
	flipped := append([]byte(nil), good...)
	flipped[len(good)/4+30] ^= 1
	files := map[string][]byte{"good.seg": good, "torn.seg": torn, "flipped.seg": flipped}
	want := map[string]int{"good.seg": 4, "torn.seg": 3, "flipped.seg": 3}
	for name, b := range files {
		p := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		disk, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := scanSegment(disk).Records; got != want[name] {
			t.Errorf("%s: %d intact records, want %d", name, got, want[name])
		}
	}
}
