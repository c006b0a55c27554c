package config

import (
	"errors"
	"testing"
)

// The test schemas stand for what the owning packages decode: a file output,
// the memory queue and an input.
type testFileOutput struct {
	Path          string `yaml:"path"`
	Filename      string `yaml:"filename"`
	NumberOfFiles int    `yaml:"number_of_files"`
	Permissions   uint32 `yaml:"permissions"`
	RotateEveryKB int    `yaml:"rotate_every_kb"`
}

type testConsoleOutput struct {
	Pretty bool `yaml:"pretty"`
}

type testQueue struct {
	Mem struct {
		Events int `yaml:"events"`
		Flush  struct {
			MinEvents int      `yaml:"min_events"`
			Timeout   Duration `yaml:"timeout"`
		} `yaml:"flush"`
	} `yaml:"mem"`
}

type testInput struct {
	Type     string            `yaml:"type"`
	Period   Duration          `yaml:"period"`
	MaxBytes ByteSize          `yaml:"max_bytes"`
	Port     uint16            `yaml:"port"`
	Ratio    float64           `yaml:"ratio"`
	Enabled  *bool             `yaml:"enabled"`
	Hosts    []string          `yaml:"hosts"`
	Labels   map[string]string `yaml:"labels"`
	Password string            `yaml:"password"`
	APIKey   string            `yaml:"api_key"`
	// A numeric secret is odd, but shows that a wrongly typed secret is
	// not echoed.
	KeyPassphrase uint16 `yaml:"key_passphrase"`
	Processors    []Raw  `yaml:"processors"`
}

var testOutputs = []string{"console", "elasticsearch", "file", "logstash"}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// checkAll does what the agent does at start-up: load, parse the top level,
// then let each owner decode its section. It returns every error.
func checkAll(opts LoadOptions) (*Agent, error) {
	root, err := Load(opts)
	if err != nil {
		return nil, err
	}
	return checkRoot(root)
}

func checkRoot(root Raw) (*Agent, error) {
	a, err := Parse(root, ParseOptions{KnownOutputs: testOutputs})
	if err != nil {
		return nil, err
	}
	var errs []error
	q := testQueue{}
	q.Mem.Events = 4096
	if err := a.Queue.Decode(&q); err != nil {
		errs = append(errs, err)
	}
	for _, in := range a.Inputs {
		var c testInput
		if err := in.Decode(&c); err != nil {
			errs = append(errs, err)
		}
	}
	switch name, sec := a.ActiveOutput(); name {
	case "file":
		var c testFileOutput
		if err := sec.Decode(&c); err != nil {
			errs = append(errs, err)
		}
	case "console":
		var c testConsoleOutput
		if err := sec.Decode(&c); err != nil {
			errs = append(errs, err)
		}
	}
	return a, errors.Join(errs...)
}

// assertPositioned fails unless err is made only of *Error values.
func assertPositioned(t *testing.T, err error) {
	t.Helper()
	for _, e := range flatten([]error{err}) {
		if _, ok := e.(*Error); !ok {
			t.Errorf("error %q is a %T, not a *config.Error", e, e)
		}
	}
}
