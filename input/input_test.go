package input

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPeriodic(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		// collect is called with the call number (1-based) and the cancel
		// of Periodic's context.
		collect func(n int, cancel context.CancelFunc) error
		want    error
		calls   int
	}{
		{"first collection at once, error returned", func(n int, _ context.CancelFunc) error { return boom }, boom, 1},
		{"collects on every tick until an error", func(n int, _ context.CancelFunc) error {
			if n == 3 {
				return boom
			}
			return nil
		}, boom, 3},
		{"ctx ended: clean stop", func(n int, cancel context.CancelFunc) error {
			if n == 2 {
				cancel()
			}
			return nil
		}, nil, 2},
		// The tick falls due during the collection that ends ctx: both
		// select cases are ready then, and none may win a collection.
		{"ctx ended with a tick due: clean stop", func(n int, cancel context.CancelFunc) error {
			if n == 2 {
				time.Sleep(5 * time.Millisecond)
				cancel()
			}
			return nil
		}, nil, 2},
		{"error after ctx ended is a clean stop", func(n int, cancel context.CancelFunc) error {
			cancel()
			return context.Canceled
		}, nil, 1},
	}
	for _, tt := range tests {
		// Repeated: a select between a ready tick and an ended ctx
		// picks at random.
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				periodicOnce(t, tt.collect, tt.want, tt.calls)
			}
		})
	}
}

func periodicOnce(t *testing.T, collect func(int, context.CancelFunc) error, want error, wantCalls int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := Periodic(ctx, time.Millisecond, func(context.Context) error {
		calls++
		return collect(calls, cancel)
	})
	if !errors.Is(err, want) || (want == nil && err != nil) {
		t.Errorf("Periodic = %v, want %v", err, want)
	}
	if calls != wantCalls {
		t.Errorf("%d collections, want %d", calls, wantCalls)
	}
}

func TestWindowIsTheTimeSinceThePreviousCollection(t *testing.T) {
	w := Window{Period: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at   time.Time
		want time.Duration
	}{
		{t0, 10 * time.Second}, // the first collection: the configured period
		{t0.Add(10*time.Second + 3*time.Millisecond), 10*time.Second + 3*time.Millisecond},
		{t0.Add(25 * time.Second), 15*time.Second - 3*time.Millisecond}, // a late tick
	} {
		if got := w.Next(step.at); got != step.want {
			t.Errorf("Next(%v) = %v, want %v", step.at, got, step.want)
		}
	}
}
