package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/qdisc/qdiscinput"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/processor"
)

// manifests reads kubernetes.yaml into its documents by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubernetes.yaml: %v", err)
		}
		kind, _ := doc["kind"].(string)
		if _, dup := out[kind]; dup || kind == "" {
			t.Fatalf("kubernetes.yaml: kind %q missing or repeated", kind)
		}
		out[kind] = doc
	}
	return out
}

// at walks maps by key and lists by index ("containers.0").
func at(t *testing.T, v any, path string) any {
	t.Helper()
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				t.Fatalf("%s: no %q", path, k)
			}
		case []any:
			i := int(k[0] - '0')
			if len(k) != 1 || i >= len(c) {
				t.Fatalf("%s: no index %q", path, k)
			}
			v = c[i]
		default:
			t.Fatalf("%s: %q under a %T", path, k, v)
		}
	}
	return v
}

func TestDaemonSetManifest(t *testing.T) {
	docs := manifests(t)
	ds := docs["DaemonSet"]
	if ds == nil || at(t, ds, "apiVersion") != "apps/v1" {
		t.Fatalf("no apps/v1 DaemonSet")
	}
	pod := at(t, ds, "spec.template.spec")
	if at(t, pod, "hostNetwork") != true || at(t, pod, "hostPID") != true {
		t.Error("hostNetwork and hostPID must be true: the host's sockets and processes")
	}
	c := at(t, pod, "containers.0")
	sc := at(t, c, "securityContext")
	if at(t, sc, "allowPrivilegeEscalation") != false || at(t, sc, "privileged") != false || at(t, sc, "readOnlyRootFilesystem") != true {
		t.Errorf("securityContext must forbid escalation and privileged mode and keep the root read-only: %v", sc)
	}
	if drop := at(t, sc, "capabilities.drop"); !equalAny(drop, "ALL") {
		t.Errorf("capabilities.drop = %v, want [ALL]", drop)
	}
	var add []string
	for _, a := range at(t, sc, "capabilities.add").([]any) {
		add = append(add, "CAP_"+a.(string))
	}
	slices.Sort(add)
	if !slices.Equal(add, defaultCaps()) {
		t.Errorf("capabilities.add = %v, want %v", add, defaultCaps())
	}
	for _, k := range []string{"cpu", "memory"} {
		if at(t, c, "resources.limits."+k) == nil || at(t, c, "resources.requests."+k) == nil {
			t.Errorf("resources.limits and requests need %s", k)
		}
	}

	// Environment: the node name from the downward API, every credential
	// from a Secret and none written in the manifest.
	env := map[string]map[string]any{}
	for _, e := range at(t, c, "env").([]any) {
		m := e.(map[string]any)
		if _, literal := m["value"]; literal {
			t.Errorf("env %v has a literal value", m["name"])
		}
		env[m["name"].(string)] = m
	}
	if at(t, env["NODE_NAME"], "valueFrom.fieldRef.fieldPath") != "spec.nodeName" {
		t.Error("NODE_NAME must come from spec.nodeName")
	}
	for _, name := range []string{"ELASTICSEARCH_HOSTS", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD"} {
		if env[name] == nil || at(t, env[name], "valueFrom.secretKeyRef.name") != "fleutanbeat-elasticsearch" {
			t.Errorf("%s must come from the Secret fleutanbeat-elasticsearch", name)
		}
	}

	// Volumes: the config from the ConfigMap, private; host paths
	// read-only except path.data.
	vols := map[string]map[string]any{}
	for _, v := range at(t, pod, "volumes").([]any) {
		m := v.(map[string]any)
		vols[m["name"].(string)] = m
	}
	mounts := map[string]map[string]any{}
	for _, v := range at(t, c, "volumeMounts").([]any) {
		m := v.(map[string]any)
		mounts[m["name"].(string)] = m
		if vols[m["name"].(string)] == nil {
			t.Errorf("mount %v has no volume", m["name"])
		}
	}
	if at(t, vols["config"], "configMap.name") != "fleutanbeat-config" || at(t, vols["config"], "configMap.defaultMode") != 0o600 {
		t.Errorf("config volume = %v, want ConfigMap fleutanbeat-config with mode 0600", vols["config"])
	}
	if at(t, mounts["config"], "mountPath") != "/etc/fleutanbeat" || at(t, mounts["config"], "readOnly") != true {
		t.Errorf("config mount = %v", mounts["config"])
	}
	hostPaths := map[string]bool{}
	for name, v := range vols {
		hp, ok := v["hostPath"].(map[string]any)
		if !ok {
			continue
		}
		hostPaths[hp["path"].(string)] = true
		ro, _ := mounts[name]["readOnly"].(bool)
		if wantRO := hp["path"] != "/var/lib/fleutanbeat"; ro != wantRO {
			t.Errorf("hostPath %v: readOnly = %v, want %v", hp["path"], ro, wantRO)
		}
	}
	for _, p := range []string{"/proc", "/sys", "/var/lib/fleutanbeat", "/run/netns", "/etc/machine-id"} {
		if !hostPaths[p] {
			t.Errorf("no hostPath volume for %s", p)
		}
	}
	if at(t, mounts["data"], "mountPath") != "/var/lib/fleutanbeat" {
		t.Errorf("path.data must be the data volume: %v", mounts["data"])
	}
}

// TestDaemonSetFollowsRun: the DaemonSet runs the image exactly as Run
// says, which is what the image test's docker run does: namespaces, user,
// capabilities, hardening, arguments and every host mount.
func TestDaemonSetFollowsRun(t *testing.T) {
	pod := at(t, manifests(t)["DaemonSet"], "spec.template.spec")
	c := at(t, pod, "containers.0")
	sc := at(t, c, "securityContext")
	if at(t, pod, "hostNetwork") != Run.HostNetwork || at(t, pod, "hostPID") != Run.HostPID {
		t.Errorf("hostNetwork/hostPID differ from Run")
	}
	if at(t, sc, "runAsUser") != Run.UID {
		t.Errorf("runAsUser = %v, Run.UID = %d", at(t, sc, "runAsUser"), Run.UID)
	}
	if at(t, sc, "readOnlyRootFilesystem") != Run.ReadOnlyRoot || at(t, sc, "allowPrivilegeEscalation") != !Run.NoNewPrivileges {
		t.Errorf("readOnlyRootFilesystem/allowPrivilegeEscalation differ from Run: %v", sc)
	}
	if add := at(t, sc, "capabilities.add"); !equalAny(add, Run.CapAdd...) {
		t.Errorf("capabilities.add = %v, Run.CapAdd = %v", add, Run.CapAdd)
	}
	var want []string
	for _, cp := range Run.CapAdd {
		want = append(want, "CAP_"+cp)
	}
	slices.Sort(want)
	if !slices.Equal(want, defaultCaps()) {
		t.Errorf("Run.CapAdd %v are not the capabilities README.md names %v", want, defaultCaps())
	}
	if args := at(t, c, "args"); !equalAny(args, Run.Args...) {
		t.Errorf("args = %v, Run.Args = %v", args, Run.Args)
	}
	vols := map[string]map[string]any{}
	for _, v := range at(t, pod, "volumes").([]any) {
		m := v.(map[string]any)
		vols[m["name"].(string)] = m
	}
	mounts := map[string]map[string]any{}
	for _, v := range at(t, c, "volumeMounts").([]any) {
		m := v.(map[string]any)
		mounts[m["name"].(string)] = m
	}
	hostVols := 0
	for _, v := range vols {
		if _, ok := v["hostPath"]; ok {
			hostVols++
		}
	}
	if hostVols != len(Run.HostMounts)+1 {
		t.Errorf("%d hostPath volumes, want Run's %d host mounts and path.data", hostVols, len(Run.HostMounts))
	}
	for _, m := range Run.HostMounts {
		v, mt := vols[m.Name], mounts[m.Name]
		if v == nil || mt == nil {
			t.Errorf("no volume and mount %q", m.Name)
			continue
		}
		ro, _ := mt["readOnly"].(bool)
		if at(t, v, "hostPath.path") != m.HostPath || mt["mountPath"] != m.Path || ro != m.ReadOnly {
			t.Errorf("volume %s: hostPath %v at %v (readOnly %v), Run says %s at %s (readOnly %v)",
				m.Name, at(t, v, "hostPath.path"), mt["mountPath"], ro, m.HostPath, m.Path, m.ReadOnly)
		}
	}
	if at(t, vols["data"], "hostPath.path") != Run.DataPath || at(t, mounts["data"], "mountPath") != Run.DataPath {
		t.Errorf("data volume differs from Run.DataPath %s", Run.DataPath)
	}
	if at(t, mounts["config"], "mountPath") != filepath.Dir(Run.ConfigPath) {
		t.Errorf("config mount differs from Run.ConfigPath %s", Run.ConfigPath)
	}
}

func equalAny(v any, want ...string) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

// TestConfigMapConfigIsValidAndNamesTheNode loads the ConfigMap's config
// as a pod would, with the Secret's and the downward API's variables, and
// checks every input, processor and the node name in host.name.
func TestConfigMapConfigIsValidAndNamesTheNode(t *testing.T) {
	cm := manifests(t)["ConfigMap"]
	src, _ := at(t, cm, "data").(map[string]any)["fleutanbeat.yml"].(string)
	if src == "" {
		t.Fatal("ConfigMap has no data.fleutanbeat.yml")
	}
	path := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"NODE_NAME":              "node-7.cluster",
		"ELASTICSEARCH_HOSTS":    "https://es.example:9200",
		"ELASTICSEARCH_USERNAME": "writer",
		"ELASTICSEARCH_PASSWORD": "pw-from-secret",
	}
	root, err := config.Load(config.LoadOptions{Path: path, StrictPerms: true, Getenv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The Elasticsearch output is not registered yet; any name passes.
	cfg, err := config.Parse(root, config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := cfg.ActiveOutput(); name != "elasticsearch" {
		t.Errorf("active output %q, want elasticsearch", name)
	}
	factories := map[string]input.Factory{"flows": flowsinput.New, "cpu": cpuinput.New, "qdisc": qdiscinput.New}
	var types []string
	for _, raw := range cfg.Inputs {
		tr, _ := raw.Child("type")
		var typ string
		if err := tr.Decode(&typ); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
		if _, err := factories[typ](raw.Without("type"), input.Settings{ProcRoot: "/proc", SysRoot: "/sys"}); err != nil {
			t.Errorf("input %s: %v", typ, err)
		}
	}
	if !slices.Equal(types, []string{"flows", "cpu", "qdisc"}) {
		t.Errorf("inputs %v, want flows, cpu, qdisc", types)
	}

	procs, err := processor.New(cfg.Processors, processor.Settings{
		Root:     t.TempDir(),
		Hostname: func() (string, error) { return "fleutanbeat-x7k2p", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &pipeline.Event{Timestamp: time.Now(), Fields: pipeline.M{}}
	for _, p := range procs {
		if e, err = p.Run(e); err != nil {
			t.Fatal(err)
		}
	}
	if name, _ := e.Fields.GetValue("host.name"); name != "node-7.cluster" {
		t.Errorf("host.name = %v, want the node name node-7.cluster", name)
	}
	if hn, _ := e.Fields.GetValue("host.hostname"); hn != "fleutanbeat-x7k2p" {
		t.Errorf("host.hostname = %v, want the real hostname", hn)
	}
}
