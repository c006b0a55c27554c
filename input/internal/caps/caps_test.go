package caps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStatusReadsCapEff(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    Set
		wantErr bool
	}{
		{"root", "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n", 0x1ffffffffff, false},
		{"documented set", "CapEff:\t000000c000280004\n", 1<<DACReadSearch | 1<<SysPtrace | 1<<SysAdmin | 1<<Perfmon | 1<<BPF, false},
		{"none", "CapEff:\t0000000000000000\n", 0, false},
		{"missing line", "Name:\tx\nCapPrm:\t0\n", 0, true},
		{"not hex", "CapEff:\tzz\n", 0, true},
		{"empty", "CapEff:\t\n", 0, true},
		{"too long", "CapEff:\t00000000000000000001\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("set = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestEffectiveReadsProcRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "self", "status"), []byte("CapEff:\t0000004000080000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Effective(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := Names(s.Missing(SysPtrace, DACReadSearch, BPF, Perfmon)); got != "CAP_DAC_READ_SEARCH, CAP_BPF" {
		t.Fatalf("missing = %q", got)
	}
	if _, err := Effective(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no status file: err = %v, want ErrNotExist", err)
	}
}

func TestMessageNamesEveryMissingCapability(t *testing.T) {
	have := Set(1 << SysPtrace)
	r := ProcessAttribution()
	got := r.Message("flows", r.Missing(have), "only sockets of the agent's own user get a process")
	want := "flows: process attribution needs CAP_DAC_READ_SEARCH, which the agent lacks: only sockets of the agent's own user get a process"
	if got != want {
		t.Fatalf("message =\n%s\nwant\n%s", got, want)
	}
	if m := r.Missing(Set(1<<SysPtrace | 1<<DACReadSearch)); m != nil {
		t.Fatalf("nothing missing, got %v", m)
	}
}

func TestCapNames(t *testing.T) {
	tests := map[Cap]string{DACReadSearch: "CAP_DAC_READ_SEARCH", NetAdmin: "CAP_NET_ADMIN", SysPtrace: "CAP_SYS_PTRACE",
		SysAdmin: "CAP_SYS_ADMIN", Perfmon: "CAP_PERFMON", BPF: "CAP_BPF", 63: "CAP_63"}
	for c, want := range tests {
		if c.String() != want {
			t.Errorf("Cap(%d) = %q, want %q", c, c.String(), want)
		}
	}
	if Set(^uint64(0)).Has(64) {
		t.Error("a capability past 63 is never held")
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add("CapEff:\t000001ffffffffff\n")
	f.Add("Name:\tbash\nCapEff:\t0\n")
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseStatus(strings.NewReader(s))
		if err != nil && set != 0 {
			t.Fatalf("error %v with a non-zero set", err)
		}
	})
}
