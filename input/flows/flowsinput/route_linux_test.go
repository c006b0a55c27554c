package flowsinput

import (
	"fmt"
	"testing"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestInputRouteFields: each connected flow's event names the device,
// gateway and source of its route, looked up in its own namespace;
// routes: false leaves them out. The UDP flow is only connect(2)ed: no
// packet goes anywhere.
func TestInputRouteFields(t *testing.T) {
	ns, peer := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, ns, peer, "r0", 1, "10.72.0.1", "10.72.0.2")
	ns.Run(t, "ip", "route", "add", "10.99.1.0/24", "via", "10.72.0.2", "dev", "r0")
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5040")
	h.Do(t, "dial tcp 127.0.0.1:5040")
	h.Do(t, "accept")
	h.Do(t, "dial udp 10.99.1.5:53")

	type route struct{ device, gateway, src any }
	for _, tt := range []struct {
		yaml string
		want map[string]route // by remote endpoint; nil: no route object
	}{
		{"period: 1h\n", map[string]route{
			"10.99.1.5:53":    {"r0", "10.72.0.2", "10.72.0.1"},
			"127.0.0.1:5040":  {"lo", nil, "127.0.0.1"},
			"127.0.0.1:ephem": {"lo", nil, "127.0.0.1"},
			"listening":       {nil, nil, nil},
		}},
		{"period: 1h\nroutes: false\n", map[string]route{
			"10.99.1.5:53":    {nil, nil, nil},
			"127.0.0.1:5040":  {nil, nil, nil},
			"127.0.0.1:ephem": {nil, nil, nil},
			"listening":       {nil, nil, nil},
		}},
	} {
		m := pipeline.NewMetrics()
		rec := collectOnce(t, newTestInputMetrics(t, tt.yaml, ns, nil, m), m)
		rec.mu.Lock()
		if len(rec.events) != 4 {
			t.Errorf("%q: %d events, want 4", tt.yaml, len(rec.events))
		}
		for _, e := range rec.events {
			key := "listening"
			if dir, _ := e.Fields.GetValue("fleutan.flow.direction"); dir != "listening" {
				ip, _ := e.Fields.GetValue("fleutan.flow.remote.ip")
				port, _ := e.Fields.GetValue("fleutan.flow.remote.port")
				key = fmt.Sprint(ip, ":", port)
				if port != 53 && port != 5040 {
					key = fmt.Sprint(ip, ":ephem")
				}
			}
			w, ok := tt.want[key]
			if !ok {
				t.Errorf("%q: unexpected event %s", tt.yaml, e.Series)
				continue
			}
			var got route
			got.device, _ = e.Fields.GetValue("fleutan.flow.route.device")
			got.gateway, _ = e.Fields.GetValue("fleutan.flow.route.gateway")
			got.src, _ = e.Fields.GetValue("fleutan.flow.route.src")
			if got != w {
				t.Errorf("%q: %s: route %+v, want %+v", tt.yaml, key, got, w)
			}
			if _, has := e.Fields.GetValue("fleutan.flow.route"); has != (w.device != nil) {
				t.Errorf("%q: %s: route object present %v", tt.yaml, key, has)
			}
		}
		rec.mu.Unlock()
	}
}
