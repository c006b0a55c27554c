package queryapi

import (
	"net/http"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
)

// cpuDoc is the answer of GET /api/v1/cpu: cpu.Diff of the latest
// collection and the one before it.
type cpuDoc struct {
	cpu.Usage
	// PreviousTime is when the collection before the latest ended, the
	// start of the period; null after the first collection, when Cores
	// and Processes are empty (a period needs two ends).
	PreviousTime *time.Time `json:"previous_time"`
}

// latestUsage returns the usage over the last period.
func (s *server) latestUsage() (cpuDoc, *apiError) {
	prevC, curC, aerr := s.collection("cpu")
	if aerr != nil {
		return cpuDoc{}, aerr
	}
	cur, _ := curC.Snapshot.(cpu.Snapshot)
	prev, _ := prevC.Snapshot.(cpu.Snapshot)
	doc := cpuDoc{Usage: cpu.Diff(prev, cur)}
	if !prev.Time.IsZero() {
		doc.PreviousTime = &prev.Time
	}
	if doc.Cores == nil {
		doc.Cores = []cpu.CoreUsage{}
	}
	if doc.Processes == nil {
		doc.Processes = []cpu.ProcessUsage{}
	}
	return doc, nil
}

func (s *server) cpu(w http.ResponseWriter, _ *http.Request, _ query) {
	doc, aerr := s.latestUsage()
	if aerr != nil {
		aerr.write(w)
		return
	}
	s.writeJSON(w, doc)
}
