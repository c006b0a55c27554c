package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Agent is the top level of fleutanbeat.yml. Sections owned by other
// packages stay Raw and are decoded strictly by their owner.
type Agent struct {
	// Inputs is fleutanbeat.inputs; each entry has a type and its options.
	Inputs          []Raw          `yaml:"-"`
	Processors      []Raw          `yaml:"processors"`
	Queue           Raw            `yaml:"queue"`
	Output          map[string]Raw `yaml:"output"`
	Setup           Raw            `yaml:"setup"`
	HTTP            Raw            `yaml:"http"`
	Logging         Raw            `yaml:"logging"`
	Path            Paths          `yaml:"path"`
	System          System         `yaml:"system"`
	Name            string         `yaml:"name"`
	Tags            []string       `yaml:"tags"`
	Fields          map[string]any `yaml:"fields"`
	FieldsUnderRoot bool           `yaml:"fields_under_root"`
	ShutdownTimeout Duration       `yaml:"shutdown_timeout"`

	activeName string
	active     Raw
}

// Paths is the path section; empty values are filled from flags by the
// program.
type Paths struct {
	Home   string `yaml:"home"`
	Config string `yaml:"config"`
	Data   string `yaml:"data"`
	Logs   string `yaml:"logs"`
}

// System is the system section. Hostfs is Beats' system.hostfs (the
// --hostfs flag): where the host's root is mounted in a container, so the
// inputs read <hostfs>/proc and <hostfs>/sys and add_host_metadata reads
// <hostfs>/etc; "" (or "/") is the agent's own root.
type System struct {
	Hostfs string `yaml:"hostfs"`
}

// ParseOptions is what the program knows and the config does not.
type ParseOptions struct {
	// KnownOutputs are the output names compiled in; nil accepts any name.
	KnownOutputs []string
}

// DefaultAgent returns the settings used where the config says nothing.
func DefaultAgent() Agent {
	return Agent{ShutdownTimeout: Duration(5 * time.Second)}
}

// agentFile is the decoding shape: the inputs sit under the beat's name,
// as in Beats (fleutanbeat.inputs), everything else at the top.
type agentFile struct {
	Beat struct {
		Inputs []Raw `yaml:"inputs"`
	} `yaml:"fleutanbeat"`
	*Agent `yaml:",inline"`
}

// Parse decodes the top level strictly and checks that exactly one output
// is enabled. All problems are reported together.
func Parse(root Raw, opts ParseOptions) (*Agent, error) {
	a := DefaultAgent()
	f := agentFile{Agent: &a}
	var errs []error
	if err := root.Decode(&f); err != nil {
		errs = append(errs, flatten([]error{err})...)
	}
	a.Inputs = f.Beat.Inputs
	if a.ShutdownTimeout < 0 {
		errs = append(errs, root.Locate(Errorf("shutdown_timeout", "must not be negative")))
	}
	if h := a.System.Hostfs; h != "" && !filepath.IsAbs(h) {
		errs = append(errs, root.Locate(Errorf("system.hostfs", "%q is not an absolute path", h)))
	}
	if err := a.pickOutput(root, opts.KnownOutputs); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return &a, nil
}

// ActiveOutput returns the enabled output and its settings without the
// `enabled` key, ready for the output's strict Decode.
func (a *Agent) ActiveOutput() (name string, section Raw) {
	return a.activeName, a.active
}

func (a *Agent) pickOutput(root Raw, known []string) error {
	outRaw, _ := root.Child("output")
	if !outRaw.IsZero() && outRaw.node.Kind != yaml.MappingNode {
		return nil // Decode has reported the wrong type
	}
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)

	var errs []error
	var enabled []string
	for _, name := range outRaw.Keys() {
		sec, ok := a.Output[name]
		if !ok {
			continue // not decoded: its error is already reported
		}
		if len(known) > 0 && !isKnown[name] {
			errs = append(errs, keyAt(outRaw, name).Errorf("unknown output (known outputs: %s)", strings.Join(sorted, ", ")))
			continue
		}
		if !sec.IsZero() && sec.node.Kind != yaml.MappingNode {
			errs = append(errs, sec.Errorf("expected the output's settings as a mapping, got %s", describe(sec)))
			continue
		}
		on := true
		if en, ok := sec.Child("enabled"); ok {
			if err := en.Decode(&on); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if on {
			enabled = append(enabled, name)
		}
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	switch len(enabled) {
	case 0:
		if len(sorted) == 0 {
			return &Error{Msg: "no output is enabled; enable exactly one output.* section"}
		}
		names := make([]string, len(sorted))
		for i, n := range sorted {
			names[i] = "output." + n
		}
		return &Error{Msg: "no output is enabled; enable exactly one of " + strings.Join(names, ", ")}
	case 1:
		a.activeName = enabled[0]
		a.active = a.Output[enabled[0]].Without("enabled")
		return nil
	}
	where := make([]string, len(enabled))
	for i, n := range enabled {
		where[i] = "output." + n + " " + place(keyAt(outRaw, n), root.file)
	}
	second := keyAt(outRaw, enabled[1])
	return second.Errorf("%d outputs are enabled (%s); keep one and set enabled: false on the others", len(enabled), strings.Join(where, ", "))
}

// keyAt is the section of a mapping's key node, for errors about the key
// itself (an unknown name) rather than its value.
func keyAt(r Raw, key string) Raw {
	if r.node != nil && r.node.Kind == yaml.MappingNode {
		if i := findKey(r.node, key); i >= 0 {
			return r.sub(r.node.Content[i], join(r.path, key))
		}
	}
	return Raw{file: r.file, path: join(r.path, key), src: r.src}
}

// place says where a section was set: "at line 3", or the -E flag.
func place(r Raw, file string) string {
	switch {
	case r.line() > 0 && r.file == file:
		return fmt.Sprintf("at line %d", r.line())
	case r.line() > 0:
		return fmt.Sprintf("at %s:%d", r.file, r.line())
	}
	return "by " + r.file
}
