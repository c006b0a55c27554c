// Package ecsfields builds the ECS objects that more than one input's
// events carry from the library's types: the process and user of a flow's
// owner and network.direction. It belongs to the adapters (it imports
// pipeline), so that no adapter imports another.
package ecsfields

import (
	"strconv"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// ProcessObjects returns the ECS process and user objects of a flow's
// owner, as the flows input and the qdisc input's flow events carry them.
func ProcessObjects(b *pipeline.Builder, p *process.Process) (proc, user *pipeline.Object) {
	ms := make([]pipeline.Member, 0, 5)
	if len(p.Args) > 0 {
		ms = append(ms, pipeline.Any("args", p.Args))
	}
	if p.Executable != "" {
		ms = append(ms, pipeline.String("executable", p.Executable))
	}
	ms = append(ms, pipeline.String("name", p.Name))
	if p.PPID > 0 {
		ms = append(ms, pipeline.Any("parent", b.Object(pipeline.Int("pid", p.PPID))))
	}
	ms = append(ms, pipeline.Int("pid", p.PID))
	id := pipeline.String("id", strconv.FormatUint(uint64(p.UID), 10))
	if p.User != "" {
		return b.Object(ms...), b.Object(id, pipeline.String("name", p.User))
	}
	return b.Object(ms...), b.Object(id)
}

// ECS network.direction values for a host-based agent: the direction
// from the host's point of view.
const (
	ecsIngress = "ingress"
	ecsEgress  = "egress"
	ecsUnknown = "unknown"
)

// Direction maps a flow's direction to ECS network.direction: ingress
// when the peer initiated, egress when this host did; ECS has no value
// for a socket that waits for peers.
func Direction(d flows.Direction) string {
	switch d {
	case flows.Inbound:
		return ecsIngress
	case flows.Outbound:
		return ecsEgress
	}
	return ecsUnknown
}
