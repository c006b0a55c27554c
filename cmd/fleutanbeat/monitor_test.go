package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/opensearch"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/diskqueue"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsEndpointMatchesStats serves a registry holding each kind of
// metric, label values and texts with quotes, backslashes and newlines
// among them, and checks that /metrics parses with Prometheus' own text
// parser, that every family has HELP and TYPE, and that every value equals
// /stats.
func TestMetricsEndpointMatchesStats(t *testing.T) {
	m := pipeline.NewMetrics()
	m.Counter("pipeline.events.published").Add(42)
	m.Counter("pipeline.events.acked").Add(40)
	m.LabeledCounter("pipeline.events.dropped", "reason", "mapping").Add(2)
	m.LabeledCounter("pipeline.events.dropped", "reason", "say \"no\"\t\\ then\nstop").Add(3)
	m.Gauge("pipeline.queue.events", func() int64 { return 7 })
	m.Counter(pipeline.MetricOutputWriteBytes).Add(1 << 40)
	m.Text(pipeline.MetricOutputType).Set("elasticsearch")
	m.Text("input.cpu.method").Set("a \"quoted\"\t\\ word\non two lines")
	m.Text("input.qdisc.flow_attribution") // unset: not reported

	mo, err := startMonitor(httpConfig{Enabled: true, Host: "127.0.0.1", Port: 0}, m, pipeline.AgentInfo{}, "host", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer mo.Close()
	base := "http://" + mo.ln.Addr().String()
	fams := checkMetricsAgainstStats(t, base, false)

	// Escaping: the odd values come back intact, and the lines carry the
	// format's three escapes (\" \\ \n) and a tab as it is, not Go's
	// quoting (\t, which the parser refuses).
	want := map[string]string{
		"fleutanbeat_pipeline_events_dropped_total": "say \"no\"\t\\ then\nstop",
		"fleutanbeat_input_cpu_method_info":         "a \"quoted\"\t\\ word\non two lines",
	}
	for name, v := range want {
		found := false
		for _, mt := range fams[name].GetMetric() {
			for _, lp := range mt.GetLabel() {
				found = found || lp.GetValue() == v
			}
		}
		if !found {
			t.Errorf("%s has no sample with label value %q", name, v)
		}
	}
	body := get(t, base+"/metrics")
	for _, line := range []string{
		`fleutanbeat_pipeline_events_dropped_total{reason="say \"no\"` + "\t" + `\\ then\nstop"} 3`,
		`fleutanbeat_input_cpu_method_info{value="a \"quoted\"` + "\t" + `\\ word\non two lines"} 1`,
		`fleutanbeat_libbeat_output_write_bytes_total 1.099511627776e+12`,
		"# HELP fleutanbeat_pipeline_queue_events Events waiting in the queue.\n# TYPE fleutanbeat_pipeline_queue_events gauge\nfleutanbeat_pipeline_queue_events 7\n",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q:\n%s", line, body)
		}
	}
	if strings.Contains(body, "flow_attribution") {
		t.Errorf("/metrics reports an unset text:\n%s", body)
	}
	if len(fams) != 7 {
		t.Errorf("/metrics has %d families, want 7:\n%s", len(fams), body)
	}
}

// TestMetricHelpCoversPackageConstants checks the help table against the
// names other packages declare; the agent-binary tests cover the rest.
func TestMetricHelpCoversPackageConstants(t *testing.T) {
	for _, name := range []string{
		diskqueue.MetricBytes, diskqueue.MetricRecords, diskqueue.MetricOldestAgeMS, diskqueue.MetricSequence,
		diskqueue.MetricCorruptRegions, diskqueue.MetricCorruptBytes, diskqueue.MetricDropped,
		elasticsearch.MetricAcked, elasticsearch.MetricDuplicates, elasticsearch.MetricRetried,
		elasticsearch.MetricDropped, elasticsearch.MetricDeadLettered, elasticsearch.MetricBlocked,
	} {
		if h, ok := pipeline.MetricHelp(name); !ok || h == "" {
			t.Errorf("no help text for %s", name)
		}
	}
	// output.opensearch has each of output.elasticsearch's counters.
	for _, name := range []string{
		elasticsearch.MetricAcked, elasticsearch.MetricDuplicates, elasticsearch.MetricRetried,
		elasticsearch.MetricDropped, elasticsearch.MetricDeadLettered, elasticsearch.MetricBlocked,
		elasticsearch.MetricHostRequests, elasticsearch.MetricHostConnErrors, elasticsearch.MetricFailovers,
	} {
		name = elasticsearch.MetricName(opensearch.Engine, name)
		if h, ok := pipeline.MetricHelp(name); !ok || h == "" {
			t.Errorf("no help text for %s", name)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// checkMetricsAgainstStats reads /stats, then /metrics, then /stats again
// from the monitoring endpoint at base and checks /metrics: it parses
// with Prometheus' text parser; every family has a documented HELP line
// and a TYPE line; every family is a /stats value and every /stats value
// (uptime_ms aside) a family; texts are equal; counters lie between the
// two /stats reads (equal when those agree). In a live agent, where a
// gauge such as the queue's length may go up and back down between the
// reads, gauges are only checked to be there. It returns the parsed
// families.
func checkMetricsAgainstStats(t *testing.T, base string, live bool) map[string]*dto.MetricFamily {
	t.Helper()
	before := flatten(getJSON(t, base+"/stats"))
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	after := flatten(getJSON(t, base+"/stats"))
	if ct, want := resp.Header.Get("Content-Type"), "text/plain; version=0.0.4"; !strings.HasPrefix(ct, want) {
		t.Errorf("/metrics Content-Type %q, want %s...", ct, want)
	}

	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for name, mf := range fams {
		if !strings.Contains(string(body), "\n# TYPE "+name+" ") && !strings.HasPrefix(string(body), "# TYPE "+name+" ") {
			t.Errorf("family %s has no TYPE line", name)
		}
		if mf.Help == nil || mf.GetHelp() == "" {
			t.Errorf("family %s has no HELP line", name)
		} else if strings.HasPrefix(mf.GetHelp(), helpUndocumented) {
			t.Errorf("family %s has no help text in pipeline's table: %q", name, mf.GetHelp())
		}
		wantType := dto.MetricType_COUNTER
		if strings.HasSuffix(name, "_info") || !strings.HasSuffix(name, "_total") {
			wantType = dto.MetricType_GAUGE
		}
		if mf.GetType() != wantType {
			t.Errorf("family %s has TYPE %s, want %s", name, mf.GetType(), wantType)
		}
	}

	// Every /stats leaf is a family, or a member of its parent's family.
	seen := map[*dto.Metric]bool{}
	keys := make([]string, 0, len(after))
	for k := range after {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key == "uptime_ms" {
			continue
		}
		hi, lo := after[key], before[key]
		prefix := "fleutanbeat_" + strings.NewReplacer(".", "_", "-", "_").Replace(key)
		if s, ok := hi.(string); ok {
			mt := member(fams[prefix+"_info"], "value", s)
			if mt == nil || mt.GetGauge().GetValue() != 1 {
				t.Errorf("/stats %s = %q; /metrics has no %s_info{value=%q} 1", key, s, prefix, s)
				continue
			}
			seen[mt] = true
			continue
		}
		var mt *dto.Metric
		for _, name := range []string{prefix + "_total", prefix} {
			if mf := fams[name]; mf != nil && len(mf.GetMetric()) == 1 && len(mf.GetMetric()[0].GetLabel()) == 0 {
				mt = mf.GetMetric()[0]
			}
		}
		if mt == nil {
			// A labeled family: the path after the family's name is the
			// label value, which may itself hold dots (a host address).
			for i := strings.IndexByte(key, '.'); i >= 0 && mt == nil; {
				parent := "fleutanbeat_" + strings.NewReplacer(".", "_", "-", "_").Replace(key[:i])
				for _, name := range []string{parent + "_total", parent} {
					if m := member(fams[name], "", key[i+1:]); m != nil {
						mt = m
					}
				}
				if j := strings.IndexByte(key[i+1:], '.'); j >= 0 {
					i += j + 1
				} else {
					i = -1
				}
			}
			if mt == nil {
				t.Errorf("/stats %s is not on /metrics", key)
				continue
			}
		}
		seen[mt] = true
		v := mt.GetCounter().GetValue()
		if mt.Gauge != nil {
			if live {
				continue
			}
			v = mt.GetGauge().GetValue()
		}
		l, _ := lo.(float64)
		h, _ := hi.(float64)
		if l > h {
			l, h = h, l
		}
		if v < l || v > h {
			t.Errorf("/metrics %s = %v, /stats %s = %v before and %v after", prefix, v, key, lo, hi)
		}
	}
	for name, mf := range fams {
		for _, mt := range mf.GetMetric() {
			if !seen[mt] {
				t.Errorf("/metrics %s %v is not on /stats", name, mt.GetLabel())
			}
		}
	}
	return fams
}

// member finds the sample of mf whose one label (named name, any name when
// "") has the value v; /stats shows an empty label value as "unknown".
func member(mf *dto.MetricFamily, name, v string) *dto.Metric {
	for _, mt := range mf.GetMetric() {
		if len(mt.GetLabel()) != 1 {
			continue
		}
		lp := mt.GetLabel()[0]
		if name != "" && lp.GetName() != name {
			continue
		}
		if lp.GetValue() == v || (lp.GetValue() == "" && v == "unknown") {
			return mt
		}
	}
	return nil
}

// flatten turns /stats' nested objects into dotted keys.
func flatten(m map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if o, ok := v.(map[string]any); ok {
			for k, c := range o {
				walk(prefix+k+".", c)
			}
			return
		}
		out[strings.TrimSuffix(prefix, ".")] = v
	}
	walk("", m)
	return out
}
