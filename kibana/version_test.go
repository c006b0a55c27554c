package kibana

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// majorMinor reads "8.9.0" as (8, 9).
func majorMinor(t *testing.T, v string) [2]int {
	t.Helper()
	var mm [2]int
	var patch int
	if n, err := fmt.Sscanf(v, "%d.%d.%d", &mm[0], &mm[1], &patch); n < 2 && err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return mm
}

func less(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

// TestMinVersionIsWhatTheObjectsDeclare: Kibana refuses an object whose
// typeMigrationVersion (or coreMigrationVersion) is newer than its own, so
// the oldest Kibana that takes the bundle is its newest declared version.
func TestMinVersionIsWhatTheObjectsDeclare(t *testing.T) {
	min := majorMinor(t, MinVersion)
	var newest [2]int
	sc := bufio.NewScanner(bytes.NewReader(Objects()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o struct {
			Type, ID             string
			TypeMigrationVersion string `json:"typeMigrationVersion"`
			CoreMigrationVersion string `json:"coreMigrationVersion"`
		}
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{o.TypeMigrationVersion, o.CoreMigrationVersion} {
			if v == "" {
				t.Errorf("%s %s: no migration version", o.Type, o.ID)
				continue
			}
			mm := majorMinor(t, v)
			if less(min, mm) {
				t.Errorf("%s %s is at %s, newer than MinVersion %s", o.Type, o.ID, v, MinVersion)
			}
			if less(newest, mm) {
				newest = mm
			}
		}
	}
	if newest != min {
		t.Errorf("the newest object version is %d.%d, MinVersion says %s", newest[0], newest[1], MinVersion)
	}
}

// TestDocsStateTheKibanaFloor: every document that names the Kibana the
// bundle needs says "Kibana <MinVersion> or later", and none says "8.x"
// or another floor.
func TestDocsStateTheKibanaFloor(t *testing.T) {
	want := "Kibana " + MinVersion + " or later"
	any := regexp.MustCompile(`Kibana (\d+\.(\d+|x))( or later)?`)
	for _, path := range []string{"../README.md", "README.md", "../fleutanbeat.yml"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Prose wraps: read it as one line of single spaces.
		b := []byte(strings.Join(strings.Fields(string(raw)), " "))
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not say %q", path, want)
		}
		for _, m := range any.FindAllSubmatch(b, -1) {
			if string(m[1]) != MinVersion || len(m[3]) == 0 {
				t.Errorf("%s says %q; the bundle needs %s", path, m[0], want)
			}
		}
	}
}
