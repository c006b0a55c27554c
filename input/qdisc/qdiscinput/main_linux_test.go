package qdiscinput

import (
	"testing"

	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
)

func TestMain(m *testing.M) { qdisctest.Main(m) }

// Sample is a qdisc of a collection with its delta, as the input reads
// them.
type Sample struct {
	qdisc.Qdisc
	qdisc.QdiscDelta
}

// samples pairs each qdisc of snap with its delta.
func samples(snap qdisc.Snapshot, deltas []qdisc.QdiscDelta) []Sample {
	out := make([]Sample, len(snap.Qdiscs))
	for i := range out {
		out[i] = Sample{snap.Qdiscs[i], deltas[i]}
	}
	return out
}
