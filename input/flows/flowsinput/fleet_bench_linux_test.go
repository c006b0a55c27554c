package flowsinput

import (
	"os"
	"strconv"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// BenchmarkFleetProfile runs the fleet profile (see runFleet) for
// FLEUTANBEAT_FLEET_PERIODS periods of 1 s (default 1,800: 30 minutes of
// agent time) into the real Elasticsearch, and reports documents and
// stored bytes (primary store after a force merge to one segment) per
// host-day at the default period of 10 s, for report: all and active,
// each in standard and time series data streams. Figures on a shared
// machine: the documents are exact, the bytes nearly so; no CPU figure.
// It fails unless, at the defaults (report: active, index_mode:
// time_series), a host-day stores at most 10% of the bytes of report:
// all in standard data streams, and unless every connection that sent in
// a period has its event with a delta for it (checkFleetDocuments).
func BenchmarkFleetProfile(b *testing.B) {
	url := estest.URL(b)
	nstest.RequireRoot(b)
	periods := 1800
	if v, err := strconv.Atoi(os.Getenv("FLEUTANBEAT_FLEET_PERIODS")); err == nil && v > 0 {
		periods = v
	}
	for b.Loop() {
		res := runFleet(b, url, periods)
		res.log(b)
		_, base := res.total(ReportAll, elasticsearch.IndexModeStandard)
		for _, mode := range []string{ReportAll, ReportActive} {
			for _, im := range []string{elasticsearch.IndexModeStandard, elasticsearch.IndexModeTimeSeries} {
				docs, bytes := res.total(mode, im)
				b.ReportMetric(docs, mode+"-"+im+"-docs/host-day")
				b.ReportMetric(bytes/1e6, mode+"-"+im+"-MB/host-day")
			}
		}
		_, defaults := res.total(ReportActive, elasticsearch.IndexModeTimeSeries)
		b.ReportMetric(defaults/base, "defaults/all-standard")
		if defaults > base/10 {
			b.Errorf("at the defaults a host-day stores %.1f MB, %.1f%% of report: all in standard data streams (%.1f MB); the goal is at most 10%%",
				defaults/1e6, 100*defaults/base, base/1e6)
		}
	}
}
