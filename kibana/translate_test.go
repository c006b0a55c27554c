package kibana

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKQLSubsetTranslatesToBoolFilter(t *testing.T) {
	cases := []struct {
		name, kql, want, err string
	}{
		{name: "term", kql: `data_stream.dataset : "fleutan.cpu"`,
			want: `{"bool":{"filter":[{"term":{"data_stream.dataset":"fleutan.cpu"}}]}}`},
		{name: "and with range", kql: `data_stream.dataset : "fleutan.qdisc" and fleutan.qdisc.tx_queue >= 0 and fleutan.flow.tcp.rtt_us > 0`,
			want: `{"bool":{"filter":[{"term":{"data_stream.dataset":"fleutan.qdisc"}},{"range":{"fleutan.qdisc.tx_queue":{"gte":0}}},{"range":{"fleutan.flow.tcp.rtt_us":{"gt":0}}}]}}`},
		{name: "boolean", kql: `fleutan.paths.changed : true`,
			want: `{"bool":{"filter":[{"term":{"fleutan.paths.changed":true}}]}}`},
		{name: "or is refused", kql: `a : "x" or b : "y"`, err: "outside"},
		{name: "wildcard is refused", kql: `process.name : java*`, err: "outside"},
		{name: "range on a string is refused", kql: `a > "x"`, err: "needs a number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := kqlToQuery(tc.kql)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(q)
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

// TestLayerAggsNestBucketsAndOrderByMetrics checks the translation of the
// deepest layer of the bundle (three terms, three metrics).
func TestLayerAggsNestBucketsAndOrderByMetrics(t *testing.T) {
	var layer lensLayer
	for _, o := range parseBundle(t) {
		if o.ID == "fleutan-flow-bdp" {
			ls, _ := lensState(t, o)
			layer = ls["layer1"]
		}
	}
	aggs, buckets, metrics, err := layerAggs(layer)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(aggs)
	want := `{"proc":{"aggs":{"order_bdp":{"max":{"field":"fleutan.flow.tcp.bdp_bytes"}},` +
		`"peer":{"aggs":{"order_bdp":{"max":{"field":"fleutan.flow.tcp.bdp_bytes"}},` +
		`"port":{"aggs":{"bdp":{"max":{"field":"fleutan.flow.tcp.bdp_bytes"}},"order_bdp":{"max":{"field":"fleutan.flow.tcp.bdp_bytes"}},` +
		`"rate":{"max":{"field":"fleutan.flow.tcp.delivery_rate_bps"}},"rtt":{"max":{"field":"fleutan.flow.tcp.rtt_us"}}},` +
		`"terms":{"field":"fleutan.flow.remote.port","order":{"order_bdp":"desc"},"size":5}}},` +
		`"terms":{"field":"fleutan.flow.remote.ip","order":{"order_bdp":"desc"},"size":10}}},` +
		`"terms":{"field":"process.name","order":{"order_bdp":"desc"},"size":10}}}`
	if string(b) != want {
		t.Errorf("aggs\n got %s\nwant %s", b, want)
	}
	if len(buckets) != 3 || len(metrics) != 3 {
		t.Errorf("buckets %v metrics %v, want 3 and 3", buckets, metrics)
	}
}

func TestFitsESRefusesMismatchedTypes(t *testing.T) {
	cases := []struct {
		op, typ string
		want    bool
	}{
		{"sum", "long", true}, {"percentile", "double", true}, {"sum", "keyword", false},
		{"terms", "ip", true}, {"terms", "text", false}, {"date_histogram", "long", false},
		{"date_histogram", "date", true}, {"unique_count", "keyword", true}, {"unique_count", "text", false},
		{"range", "ip", false}, {"count", "long", false},
	}
	for _, tc := range cases {
		if got := fitsES(tc.op, tc.typ); got != tc.want {
			t.Errorf("fitsES(%s, %s) = %v, want %v", tc.op, tc.typ, got, tc.want)
		}
	}
}
