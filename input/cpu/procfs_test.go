package cpu

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStatFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []coreTimes
	}{
		{"stat", []coreTimes{
			{CPU: 0, User: 103264, System: 20990, Idle: 106390, IOWait: 260, SoftIRQ: 96, Steal: 70},
			{CPU: 1, User: 107180, System: 21278, Idle: 101221, IOWait: 1004, SoftIRQ: 338, Steal: 69},
		}},
		// Before 2.6.11 there was no steal column, before 2.6 only four.
		{"stat_2.6.10", []coreTimes{
			{CPU: 0, User: 5, Nice: 6, System: 7, Idle: 8},
			{CPU: 1, User: 5, Nice: 14, System: 23, Idle: 32},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseStat(readFixture(t, tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatRejectsMalformedCoreLines(t *testing.T) {
	for _, in := range []string{
		"cpu0 1 2 3\n",          // too few columns
		"cpu0 1 2 x 4\n",        // not a number
		"cpux 1 2 3 4\n",        // not a cpu number
		"cpu-1 1 2 3 4\n",       // negative
		"cpu0\n",                // no columns
		"cpu0 1 2 3 -4 5 6 7\n", // negative counter
	} {
		if got, err := parseStat([]byte(in), nil); !errors.Is(err, errMalformed) {
			t.Errorf("%q: got %+v, %v; want errMalformed", in, got, err)
		}
	}
}

func TestParseSoftirqsFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []netSoftirqs
	}{
		{"softirqs", []netSoftirqs{{CPU: 0, RX: 167667, TX: 223}, {CPU: 1, RX: 250094, TX: 265}}},
		{"softirqs_4cpu", []netSoftirqs{{0, 1000, 10}, {1, 2000, 20}, {2, 3000, 30}, {3, 4000, 40}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseSoftirqs(readFixture(t, tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseSoftirqsRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		"",
		"  CPU0 CPU1\n NET_RX: 1 2\n", // no NET_TX
		"  CPU0 CPU1\n NET_RX: 1 2\n NET_TX: 1\n",     // short row
		"  CPU0 CPU1\n NET_RX: 1 2 3\n NET_TX: 1 2\n", // long row
		"  CPU0 CPUx\n NET_RX: 1 2\n NET_TX: 1 2\n",   // bad header
		"  CPU0 CPU1\n NET_RX: 1 -2\n NET_TX: 1 2\n",  // bad count
	} {
		if got, err := parseSoftirqs([]byte(in), nil); !errors.Is(err, errMalformed) {
			t.Errorf("%q: got %+v, %v; want errMalformed", in, got, err)
		}
	}
}

func TestParseTaskStatFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want taskStat
	}{
		{"task_stat", taskStat{PPID: 5673, Name: "cat", Ticks: 0, NumThreads: 1, StartTime: 232494, Processor: 1}},
		// comm holds ") (": the fields start after the last ')'.
		{"task_stat_odd_comm", taskStat{PPID: 1, Name: "a) (b c", Ticks: 375, NumThreads: 3, StartTime: 98765, Processor: 1}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseTaskStat(readFixture(t, tc.file), true)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			got, _ = parseTaskStat(readFixture(t, tc.file), false)
			if tc.want.Name = ""; got != tc.want {
				t.Errorf("without name: got %+v", got)
			}
		})
	}
}

func TestParseTaskStatRejectsTruncated(t *testing.T) {
	full := string(readFixture(t, "task_stat"))
	for _, in := range []string{"", "1 (x", "1 x) R", full[:len(full)/2], "1 (x) R 1 2 3 4 5 6 7 8 9 10 11 x 12"} {
		if got, err := parseTaskStat([]byte(in), false); !errors.Is(err, errMalformed) {
			t.Errorf("%q: got %+v, %v; want errMalformed", in, got, err)
		}
	}
}

func TestParseSchedMigrations(t *testing.T) {
	got, err := parseSchedMigrations(readFixture(t, "task_sched"))
	if err != nil || got != 1 {
		t.Errorf("fixture: got %d, %v; want 1", got, err)
	}
	for _, in := range []string{"", "se.nr_migrations_cold : 5\n", "se.nr_migrations : x\n"} {
		if _, err := parseSchedMigrations([]byte(in)); !errors.Is(err, errMalformed) {
			t.Errorf("%q: %v; want errMalformed", in, err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add(readFixture(f, "stat"))
	f.Add(readFixture(f, "stat_2.6.10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cores, err := parseStat(b, nil)
		if err == nil {
			for _, c := range cores {
				if c.CPU < 0 {
					t.Fatalf("negative cpu %d", c.CPU)
				}
			}
		}
	})
}

func FuzzParseSoftirqs(f *testing.F) {
	f.Add(readFixture(f, "softirqs"))
	f.Add(readFixture(f, "softirqs_4cpu"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSoftirqs(b, nil)
		if err != nil && len(s) != 0 {
			t.Fatalf("error %v with %d columns", err, len(s))
		}
	})
}

func FuzzParseTaskStat(f *testing.F) {
	f.Add(readFixture(f, "task_stat"))
	f.Add(readFixture(f, "task_stat_odd_comm"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseTaskStat(b, true)
		if err == nil && (st.Processor < 0 || st.PPID < 0) {
			t.Fatalf("negative field: %+v", st)
		}
	})
}

func FuzzParseSchedMigrations(f *testing.F) {
	f.Add(readFixture(f, "task_sched"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSchedMigrations(b)
	})
}

func TestParseSchedstatRuntime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"189659134 132585320 418\n", 189659134, true},
		{"0 0 0\n", 0, true}, // CONFIG_SCHED_INFO off
		{"", 0, false},
		{"x 1 2\n", 0, false},
		{"99999999999999999999999 1 2\n", 0, false},
	} {
		got, err := parseSchedstatRuntime([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseSchedstatRuntime(f *testing.F) {
	f.Add(readFixture(f, "task_schedstat"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSchedstatRuntime(b)
	})
}
