package pipeline

// Status is the outcome an output reports for one event of a batch.
type Status uint8

const (
	// Pending events are acked when Publish returns nil and retried when it
	// returns an error.
	Pending Status = iota
	Acked
	Retry
	Dropped
)

// Batch is a group of events handed to an output in one Publish call.
type Batch struct {
	Events []Event
	status []Status
	reason []string
	// stored says how an acked event was stored, for the output counters;
	// nil while every acked event is newly stored.
	stored []storedAs
}

// storedAs tells acked events apart for libbeat.output.events.*.
type storedAs uint8

const (
	storedNew storedAs = iota
	storedDuplicate
	storedDeadLetter
)

// NewBatch wraps events in a batch with every event pending.
func NewBatch(events []Event) *Batch {
	return &Batch{Events: events, status: make([]Status, len(events))}
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.Events) }

// Ack marks event i as stored by the destination.
func (b *Batch) Ack(i int) { b.ackAs(i, storedNew) }

// AckDuplicate marks event i as acked because the destination already had
// it (a create of a known _id answered 409); it counts as a duplicate.
func (b *Batch) AckDuplicate(i int) { b.ackAs(i, storedDuplicate) }

// AckDeadLetter marks event i as acked because it was stored in the
// dead-letter index instead of its own; it counts as dead_letter.
func (b *Batch) AckDeadLetter(i int) { b.ackAs(i, storedDeadLetter) }

func (b *Batch) ackAs(i int, as storedAs) {
	b.status[i] = Acked
	if as != storedNew && b.stored == nil {
		b.stored = make([]storedAs, len(b.Events))
	}
	if b.stored != nil {
		b.stored[i] = as
	}
}

// storedAs returns how acked event i was stored.
func (b *Batch) storedAs(i int) storedAs {
	if b.stored == nil {
		return storedNew
	}
	return b.stored[i]
}

// Retry marks event i to be sent again later.
func (b *Batch) Retry(i int) { b.status[i] = Retry }

// Drop marks event i as permanently refused, with a reason that is counted
// and logged. Outputs never lose an event without calling Drop.
func (b *Batch) Drop(i int, reason string) {
	if b.reason == nil {
		b.reason = make([]string, len(b.Events))
	}
	b.status[i] = Dropped
	b.reason[i] = reason
}

// Status returns the outcome of event i and, for dropped events, the reason.
func (b *Batch) Status(i int) (Status, string) {
	if b.status[i] == Dropped {
		return Dropped, b.reason[i]
	}
	return b.status[i], ""
}
