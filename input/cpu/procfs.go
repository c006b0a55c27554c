package cpu

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// errMalformed marks kernel text that does not have the documented shape.
var errMalformed = errors.New("malformed")

// coreTimes is one "cpuN" line of /proc/stat (Documentation/filesystems/
// proc.rst, "1.8 Miscellaneous kernel statistics"), in USER_HZ ticks.
type coreTimes struct {
	CPU                                                   int
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// parseStat returns the per-core lines of /proc/stat, appended to dst. The
// aggregate "cpu" line is skipped; older kernels print fewer columns
// (steal since 2.6.11), which read as zero.
func parseStat(b []byte, dst []coreTimes) ([]coreTimes, error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) < 4 || string(line[:3]) != "cpu" || line[3] == ' ' {
			continue
		}
		rest := line[3:]
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return dst, fmt.Errorf("/proc/stat: %q: %w", line, errMalformed)
		}
		n, err := strconv.Atoi(string(rest[:sp]))
		if err != nil || n < 0 {
			return dst, fmt.Errorf("/proc/stat: %q: bad cpu number: %w", line, errMalformed)
		}
		c := coreTimes{CPU: n}
		fields := [...]*uint64{&c.User, &c.Nice, &c.System, &c.Idle, &c.IOWait, &c.IRQ, &c.SoftIRQ, &c.Steal}
		i := 0
		for f := range bytes.FieldsSeq(rest[sp:]) {
			if i == len(fields) {
				break
			}
			v, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return dst, fmt.Errorf("/proc/stat: %q: %w", line, errMalformed)
			}
			*fields[i] = v
			i++
		}
		if i < 4 {
			return dst, fmt.Errorf("/proc/stat: %q: %d columns: %w", line, i, errMalformed)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// netSoftirqs are the NET_RX and NET_TX counts of one CPU.
type netSoftirqs struct {
	CPU    int
	RX, TX uint64
}

// parseSoftirqs reads /proc/softirqs (kernel/softirq.c, show_softirqs in
// fs/proc/softirqs.c): a header of "CPUn" names for the possible CPUs, then
// one row per softirq with a count per column.
func parseSoftirqs(b []byte, dst []netSoftirqs) ([]netSoftirqs, error) {
	header, b, _ := bytes.Cut(b, []byte{'\n'})
	base := len(dst)
	for name := range bytes.FieldsSeq(header) {
		n, ok := bytes.CutPrefix(name, []byte("CPU"))
		cpu, err := strconv.Atoi(string(n))
		if !ok || err != nil || cpu < 0 {
			return dst[:base], fmt.Errorf("/proc/softirqs: header column %q: %w", name, errMalformed)
		}
		dst = append(dst, netSoftirqs{CPU: cpu})
	}
	cols := dst[base:]
	if len(cols) == 0 {
		return dst[:base], fmt.Errorf("/proc/softirqs: no CPU columns: %w", errMalformed)
	}
	var seenRX, seenTX bool
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		name, counts, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		rx := string(name) == "NET_RX"
		if !rx && string(name) != "NET_TX" {
			continue
		}
		i := 0
		for f := range bytes.FieldsSeq(counts) {
			if i == len(cols) {
				return dst[:base], fmt.Errorf("/proc/softirqs: %s has more columns than CPUs: %w", name, errMalformed)
			}
			v, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return dst[:base], fmt.Errorf("/proc/softirqs: %s: %q: %w", name, f, errMalformed)
			}
			if rx {
				cols[i].RX = v
			} else {
				cols[i].TX = v
			}
			i++
		}
		if i != len(cols) {
			return dst[:base], fmt.Errorf("/proc/softirqs: %s has %d columns for %d CPUs: %w", name, i, len(cols), errMalformed)
		}
		if rx {
			seenRX = true
		} else {
			seenTX = true
		}
	}
	if !seenRX || !seenTX {
		return dst[:base], fmt.Errorf("/proc/softirqs: no NET_RX or NET_TX row: %w", errMalformed)
	}
	return dst, nil
}

// taskStat holds the fields of /proc/PID/task/TID/stat (proc(5)) the
// sampler needs.
type taskStat struct {
	PPID       int
	Name       string // only when asked for: it allocates
	Ticks      uint64 // utime + stime (fields 14 and 15), USER_HZ
	NumThreads int    // field 20, of the whole process
	StartTime  uint64 // field 22
	Processor  int    // field 39: the CPU the task last ran on
}

// parseTaskStat parses a stat line without allocating unless withName.
// comm may hold spaces and parentheses, so the fields start after the last
// ')' (as procps does).
func parseTaskStat(b []byte, withName bool) (taskStat, error) {
	var st taskStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, fmt.Errorf("task stat: no (comm): %w", errMalformed)
	}
	if withName {
		st.Name = string(b[open+1 : end])
	}
	rest := b[end+1:]
	// Field numbers are 1-based and rest starts at field 3 (state).
	field := 3
	var utime uint64
	for len(rest) > 0 && field <= 39 {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		i := bytes.IndexAny(rest, " \n")
		if i < 0 {
			i = len(rest)
		}
		tok := rest[:i]
		rest = rest[i:]
		if len(tok) == 0 {
			break
		}
		switch field {
		case 4, 14, 15, 20, 22, 39:
			v, ok := atou(tok)
			// ppid and processor are printed as signed ints.
			if !ok && (field == 4 || field == 39) && len(tok) > 1 && tok[0] == '-' {
				v, ok = 0, true
			}
			if !ok {
				return st, fmt.Errorf("task stat: field %d %q: %w", field, tok, errMalformed)
			}
			switch field {
			case 4:
				st.PPID = int(min(v, 1<<31-1))
			case 14:
				utime = v
			case 15:
				st.Ticks = utime + v
			case 20:
				st.NumThreads = int(min(v, 1<<31-1))
			case 22:
				st.StartTime = v
			case 39:
				st.Processor = int(min(v, 1<<31-1))
			}
		}
		field++
	}
	if field <= 39 {
		return st, fmt.Errorf("task stat: %d fields, want at least 39: %w", field-1, errMalformed)
	}
	return st, nil
}

// parseSchedMigrations finds se.nr_migrations in /proc/PID/task/TID/sched
// (proc_sched_show_task, kernel/sched/debug.c). It is printed whether or
// not schedstats are enabled.
func parseSchedMigrations(b []byte) (uint64, error) {
	const key = "se.nr_migrations"
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != ':') {
			continue
		}
		_, val, ok := bytes.Cut(rest, []byte{':'})
		if !ok {
			break
		}
		v, ok := atou(bytes.TrimSpace(val))
		if !ok {
			break
		}
		return v, nil
	}
	return 0, fmt.Errorf("task sched: no %s: %w", key, errMalformed)
}

// atou parses a decimal without allocating.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseSchedstatRuntime returns the first field of /proc/PID/schedstat:
// sum_exec_runtime in ns (proc_pid_schedstat, fs/proc/base.c).
func parseSchedstatRuntime(b []byte) (uint64, error) {
	i := bytes.IndexAny(b, " \n")
	if i < 0 {
		i = len(b)
	}
	v, ok := atou(b[:i])
	if !ok {
		return 0, fmt.Errorf("schedstat: %q: %w", b, errMalformed)
	}
	return v, nil
}
