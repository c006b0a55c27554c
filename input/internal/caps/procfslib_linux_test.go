package caps

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
)

// BenchmarkProcfsVsOwn reads the CapEff line of the same status file with
// prometheus/procfs and with ParseStatus in the same run.
func BenchmarkProcfsVsOwn(b *testing.B) {
	for _, src := range []struct{ name, root string }{
		{"fixture", filepath.Join("testdata", "proc")},
		{"live", "/proc"},
	} {
		fs, err := procfs.NewFS(src.root)
		if err != nil {
			b.Fatal(err)
		}
		own, err := Effective(src.root)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("status/"+src.name+"/own", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s, err := Effective(src.root); err != nil || s != own {
					b.Fatal(s, err)
				}
			}
		})
		b.Run("status/"+src.name+"/procfs", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				self, err := fs.Self()
				if err != nil {
					b.Fatal(err)
				}
				st, err := self.NewStatus()
				if err != nil || Set(st.CapEff) != own {
					b.Fatal(st.CapEff, err)
				}
			}
		})
	}
}
