package logstash

// slowStartWindow is the first window size with slow_start, as in Beats
// (libbeat/outputs/logstash/window.go, defaultStartMaxWindowSize).
const slowStartWindow = 10

// window is the number of events sent in one lumberjack window. With
// slow_start it starts small and grows by half after each window the
// server acknowledged in full, never past the largest size that has
// worked once it had to shrink, so a Logstash that chokes on large windows
// is probed gently; an error halves it. Without slow_start it stays at
// bulk_max_size. One window belongs to one client, used by one Publish at a
// time, so it needs no lock.
type window struct {
	size, maxOK, max int
	slowStart        bool
}

func newWindow(max int, slowStart bool) window {
	w := window{size: max, maxOK: max, max: max, slowStart: slowStart}
	if slowStart {
		w.size = min(slowStartWindow, max)
		w.maxOK = w.size
	}
	return w
}

// grow is called after a window of n events was acknowledged in full.
func (w *window) grow(n int) {
	if !w.slowStart || w.size > n {
		return // a short window (the end of a batch) proves nothing
	}
	next := (3*w.size + 1) / 2
	if w.maxOK < w.size {
		w.maxOK = w.size
	} else if w.size < w.maxOK {
		next = min(next, w.maxOK)
	}
	w.size = max(1, min(next, w.max))
}

// shrink is called after a window failed.
func (w *window) shrink() {
	if w.slowStart {
		w.size = max(1, w.size/2)
	}
}
