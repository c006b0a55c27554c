package main

import (
	"sort"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/benchmark"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/paths/pathsinput"
	"github.com/fleutan/fleutanbeat/input/qdisc/qdiscinput"
	"github.com/fleutan/fleutanbeat/input/rdma/rdmainput"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/console"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/file"
	"github.com/fleutan/fleutanbeat/output/logstash"
	"github.com/fleutan/fleutanbeat/output/opensearch"
)

// The explicit registries: adding an input or output is one line here.
var inputFactories = map[string]input.Factory{
	"benchmark": benchmark.New,
	"cpu":       cpuinput.New,
	"flows":     flowsinput.New,
	"paths":     pathsinput.New,
	"qdisc":     qdiscinput.New,
	"rdma":      rdmainput.New,
}

var outputFactories = map[string]output.Factory{
	"console":       console.New,
	"elasticsearch": elasticsearch.New,
	"file":          file.New,
	"logstash":      logstash.New,
	"opensearch":    opensearch.New,
}

func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
