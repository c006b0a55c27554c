package queryapi

import (
	"net/http"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/process"
)

// processDoc is the answer of GET /api/v1/processes/{pid}.
type processDoc struct {
	Process *process.Process `json:"process"`
	// FlowsTime is the time of the flows collection the flows come from,
	// CPUTime the end of the cpu period; null where that input has no
	// collection (or does not run).
	FlowsTime *time.Time `json:"flows_time"`
	CPUTime   *time.Time `json:"cpu_time"`
	// Flows are its flows in the latest flows collection, with their
	// deltas, as GET /api/v1/flows?pid= gives them.
	Flows []flowItem `json:"flows"`
	// CPU is its usage over the last cpu period, with its distribution
	// over the cores; null when it used no CPU then (or no cpu input
	// runs).
	CPU *cpu.ProcessUsage `json:"cpu"`
}

// process answers from the flows and cpu collections, whichever the agent
// runs and has: 404 when it runs neither or neither knows the pid, 503
// while none of those it runs has collected.
func (s *server) process(w http.ResponseWriter, r *http.Request, _ query) {
	pid, err := parsePID(r.PathValue("pid"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "path parameter pid: %v", err)
		return
	}
	doc := processDoc{Flows: []flowItem{}}
	fd, cur, deltas, flowsErr := s.latestFlows()
	if flowsErr == nil {
		doc.FlowsTime = &fd.Time
		q := query{pid: &pid}
		for i := range cur.Flows {
			if f := &cur.Flows[i]; q.matchFlow(f) {
				doc.Flows = append(doc.Flows, item(f, deltas[i]))
				if doc.Process == nil {
					doc.Process = f.Process
				}
			}
		}
	}
	u, cpuErr := s.latestUsage()
	if cpuErr == nil {
		doc.CPUTime = &u.Time
		for i := range u.Processes {
			if p := &u.Processes[i]; p.Process != nil && p.Process.PID == pid {
				doc.CPU = p
				if doc.Process == nil {
					doc.Process = p.Process
				}
			}
		}
	}
	switch {
	case flowsErr != nil && cpuErr != nil && flowsErr.status == http.StatusNotFound && cpuErr.status == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "no flows or cpu input is running: add one to fleutanbeat.inputs")
	case flowsErr != nil && cpuErr != nil:
		(&apiError{http.StatusServiceUnavailable, "neither the flows nor the cpu input has completed its first collection yet"}).write(w)
	case doc.Process == nil:
		writeError(w, http.StatusNotFound, "process %d is in no flow of the latest flows collection and used no CPU in the last cpu period", pid)
	default:
		s.writeJSON(w, doc)
	}
}
