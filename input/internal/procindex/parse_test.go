package procindex

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		file    string
		want    procStat
		wantErr bool
	}{
		{"stat_spaces", procStat{Comm: "my (weird) proc", PPID: 1, StartTime: 98765}, false},
		{"stat_kthread", procStat{Comm: "kthreadd", PPID: 0, StartTime: 5}, false},
		{"stat_truncated", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseStat(fixture(t, tt.file))
			if tt.wantErr {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("err = %v, want errMalformed", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusUIDIsTheRealUID(t *testing.T) {
	if uid, err := ParseStatusUID(fixture(t, "status")); err != nil || uid != 1000 {
		t.Errorf("got %d, %v; want 1000", uid, err)
	}
	if _, err := ParseStatusUID(fixture(t, "status_no_uid")); !errors.Is(err, errMalformed) {
		t.Errorf("no Uid line: err = %v", err)
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"nul separated with an empty argument", fixture(t, "cmdline"), []string{"/usr/bin/python3", "-m", "http.server", "", "8000"}},
		{"rewritten by setproctitle", fixture(t, "cmdline_setproctitle"), []string{"nginx: worker process"}},
		{"kernel thread", nil, nil},
		{"only nuls", []byte{0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCmdline(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseSocketLink(t *testing.T) {
	tests := []struct {
		in   string
		ino  uint32
		isOK bool
	}{
		{"socket:[123456]", 123456, true},
		{"socket:[4294967295]", 4294967295, true},
		{"socket:[4294967296]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[123]", 0, false},
		{"/dev/null", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
	}
	for _, tt := range tests {
		ino, ok := parseSocketLink([]byte(tt.in))
		if ino != tt.ino || ok != tt.isOK {
			t.Errorf("%q: got %d, %v; want %d, %v", tt.in, ino, ok, tt.ino, tt.isOK)
		}
	}
}

func TestParsePasswdKeepsFirstEntryPerUID(t *testing.T) {
	got, err := parsePasswd(bytes.NewReader(fixture(t, "passwd")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{0: "root", 1: "daemon", 65534: "nobody", 4294967295: "big"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzParsePasswd(f *testing.F) {
	f.Add(fixture(f, "passwd"))
	f.Add([]byte("a:b:1\n:::\n\x00:x:2:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		users, err := parsePasswd(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, name := range users {
			if name == "" || bytes.ContainsAny([]byte(name), ":\n") {
				t.Fatalf("bad name %q", name)
			}
		}
	})
}

func FuzzParseStat(f *testing.F) {
	for _, n := range []string{"stat_spaces", "stat_kthread", "stat_truncated"} {
		f.Add(fixture(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b)
		_, _ = ParseStatusUID(b)
		_ = parseCmdline(b)
		_, _ = parseSocketLink(b)
	})
}

func TestParseStatusUIDTable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"Name:\tcat\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\n", 1000, true},
		{"Uid:\t0\t0\t0\t0", 0, true},
		{"Name:\tcat\nGid:\t0\n", 0, false},
		{"Uid:\t-1\n", 0, false},
		{"Uid:\t4294967296\n", 0, false},
		{"Uid:\n", 0, false},
	} {
		got, err := ParseStatusUID([]byte(tc.in))
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("%q: %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, errMalformed) {
			t.Errorf("%q: %d, %v; want errMalformed", tc.in, got, err)
		}
	}
}
