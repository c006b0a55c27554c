package input

import "time"

// Times are the two durations every periodic event carries. Window is the
// time the event covers, ECS event.duration (a metric's measurement
// window); Collection is how long the collection that produced it took,
// fleutan.collection.duration_us, so a slow kernel dump is visible without
// being mistaken for the window.
type Times struct {
	Window, Collection time.Duration
}

// CollectionMicros is Collection as fleutan.collection.duration_us.
func (t Times) CollectionMicros() int64 { return t.Collection.Microseconds() }

// Window follows the windows of a periodic input: each collection covers
// the time since the previous collection started (what its deltas cover),
// the first one the configured period. The zero Window with Period set is
// ready to use.
type Window struct {
	Period time.Duration
	last   time.Time
}

// Next returns the window of the collection that started at start.
func (w *Window) Next(start time.Time) time.Duration {
	d := w.Period
	if !w.last.IsZero() {
		d = start.Sub(w.last)
	}
	w.last = start
	return d
}
