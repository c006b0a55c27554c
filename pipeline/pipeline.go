package pipeline

import "context"

// Publisher is what an input emits into. Publish blocks while the queue is
// full and returns ctx.Err() when ctx ends first.
//
// Publish retains neither the events slice nor anything reachable from the
// events' Fields once it returns (as io.Writer must not retain p): it
// encodes or copies what it keeps, so the input may reuse that memory for
// its next events (a Builder's Reset). Processors may still change the
// events while Publish runs.
type Publisher interface {
	Publish(ctx context.Context, events ...Event) error
}

// Output receives batches. On a nil return, events still Pending count as
// acked; on an error, Pending events are retried. Close is safe to call more
// than once and after a failed start.
type Output interface {
	Publish(ctx context.Context, b *Batch) error
	Close() error
}

// Processor transforms or filters one event. It returns nil to drop the
// event. An error is logged and counted; the event goes on unchanged.
type Processor interface {
	Run(e *Event) (*Event, error)
	String() string
}
