package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/diskqueue"
	"github.com/fleutan/fleutanbeat/pipeline/processor"
)

// agent is everything a run needs, built and validated before anything
// starts: a config error never leaves half an agent running.
type agent struct {
	root        config.Raw
	cfg         *config.Agent
	paths       config.Paths
	http        httpConfig
	logging     loggingConfig
	queue       pipeline.QueueConfig
	disk        *diskqueue.Config // queue.disk, when configured
	processors  []pipeline.Processor
	inputs      []agentInput
	outName     string
	outRaw      config.Raw
	outSettings output.Settings
	out         output.Group
	metrics     *pipeline.Metrics
	log         *slog.Logger
	// latest receives each input type's latest collection for the query
	// API (http.api.enabled); nil while it is off.
	latest *input.Latest
}

type agentInput struct {
	typ        string
	in         input.Input
	processors []pipeline.Processor
	latest     *input.Latest // the query API's store, for the first input of its type
}

// buildAgent loads and validates the whole configuration, reporting every
// problem at once. Nothing is started; outputs may hold open files, which
// close() releases.
func buildAgent(o *options, mkLog func(loggingConfig, config.Paths) (*slog.Logger, error)) (*agent, error) {
	path := resolveConfigPath(o)
	root, err := config.Load(config.LoadOptions{Path: path, Overrides: flagOverrides(o), StrictPerms: o.strictPerms})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(root, config.ParseOptions{KnownOutputs: names(outputFactories)})
	if err != nil {
		return nil, err
	}
	a := &agent{root: root, cfg: cfg, metrics: pipeline.NewMetrics()}
	a.paths = resolvePaths(cfg.Path)
	var errs []error
	decode := func(section string, out config.Validator) {
		raw, ok := root.Child(section)
		if !ok {
			return
		}
		if err := raw.DecodeValid(out); err != nil {
			errs = append(errs, err)
		}
	}
	a.http = defaultHTTPConfig()
	decode("http", &a.http)
	a.logging = defaultLoggingConfig()
	decode("logging", &a.logging)
	if len(errs) > 0 {
		// Without a valid logging section there is nowhere to log to; the
		// errors found so far are enough to act on.
		return nil, errors.Join(errs...)
	}
	log, err := mkLog(a.logging, a.paths)
	if err != nil {
		return nil, err
	}
	a.log = log
	a.queue = pipeline.DefaultQueueConfig()
	if qraw, ok := root.Child("queue"); ok {
		memRaw := qraw.Without("disk")
		if err := memRaw.DecodeValid(&a.queue); err != nil {
			errs = append(errs, err)
		}
		if draw, ok := qraw.Child("disk"); ok {
			d := diskqueue.DefaultConfig()
			if err := draw.DecodeValid(&d); err != nil {
				errs = append(errs, err)
			}
			if _, mem := qraw.Child("mem"); mem {
				log.Warn("queue.disk is set: queue.mem is ignored")
			}
			if d.Path == "" {
				d.Path = filepath.Join(a.paths.Data, "queue")
			}
			a.disk = &d
		}
	}

	// system.hostfs: a containerised agent reads the host's /proc and
	// /sys where they are mounted (Beats' hostfs convention).
	hostfs := cfg.System.Hostfs
	if hostfs == "" {
		hostfs = "/"
	}
	procSettings := processor.Settings{Logger: log, Root: hostfs}
	if a.processors, err = processor.New(cfg.Processors, procSettings); err != nil {
		errs = append(errs, err)
	}
	inSettings := input.Settings{Logger: log, ProcRoot: filepath.Join(hostfs, "proc"), SysRoot: filepath.Join(hostfs, "sys"), DataPath: a.paths.Data, Metrics: a.metrics,
		Cores: input.NewProcessCores()}
	if a.http.Enabled && a.http.API.Enabled {
		a.latest = input.NewLatest()
	}
	for _, raw := range cfg.Inputs {
		in, err := buildInput(raw, inSettings, procSettings, a.latestFor)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if in != nil {
			a.inputs = append(a.inputs, *in)
		}
	}
	outName, outRaw := cfg.ActiveOutput()
	a.outName, a.outRaw = outName, outRaw
	a.outSettings = output.Settings{Logger: log.With("output", outName), Beat: "fleutanbeat", Version: version,
		DataPath: a.paths.Data, Metrics: a.metrics, Setup: cfg.Setup, CheckOnly: !o.forRun}
	if f, ok := outputFactories[outName]; ok {
		g, err := f(outRaw, a.outSettings)
		if err != nil {
			errs = append(errs, err)
		} else {
			a.out = g
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// latestFor hands the query API's store to the first enabled input of each
// type and nil to the others: with two flows inputs (say, two namespaces)
// the API shows the first one's collections.
func (a *agent) latestFor(typ string) *input.Latest {
	if a.latest == nil {
		return nil
	}
	for _, in := range a.inputs {
		if in.typ == typ {
			return nil
		}
	}
	return a.latest
}

// apiInputs are the input types whose collections the query API serves.
func (a *agent) apiInputs() []string {
	var types []string
	for _, in := range a.inputs {
		if in.latest != nil {
			types = append(types, in.typ)
		}
	}
	return types
}

func buildInput(raw config.Raw, s input.Settings, ps processor.Settings, latestFor func(typ string) *input.Latest) (*agentInput, error) {
	var head struct {
		Type       string       `yaml:"type"`
		Enabled    *bool        `yaml:"enabled"`
		Processors []config.Raw `yaml:"processors"`
	}
	typRaw, ok := raw.Child("type")
	if !ok {
		return nil, raw.Errorf("missing key \"type\" (one of %s)", strings.Join(names(inputFactories), ", "))
	}
	if err := typRaw.Decode(&head.Type); err != nil {
		return nil, err
	}
	f, ok := inputFactories[head.Type]
	if !ok {
		return nil, typRaw.Errorf("unknown input type %q (known: %s)", head.Type, strings.Join(names(inputFactories), ", "))
	}
	if en, ok := raw.Child("enabled"); ok {
		if err := en.Decode(&head.Enabled); err != nil {
			return nil, err
		}
	}
	if head.Enabled != nil && !*head.Enabled {
		return nil, nil
	}
	var procs []pipeline.Processor
	var errs []error
	if pr, ok := raw.Child("processors"); ok {
		var err error
		if procs, err = processor.New(pr.List(), ps); err != nil {
			errs = append(errs, err)
		}
	}
	s.Logger = s.Logger.With("input", head.Type)
	s.Latest = latestFor(head.Type)
	in, err := f(raw.Without("type", "enabled", "processors"), s)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &agentInput{typ: head.Type, in: in, processors: procs, latest: s.Latest}, nil
}

// resolvePaths applies the Beats layout: home defaults to the binary's
// directory; config, data and logs default to folders of home.
func resolvePaths(p config.Paths) config.Paths {
	if p.Home == "" {
		p.Home = "."
		if exe, err := os.Executable(); err == nil {
			p.Home = filepath.Dir(exe)
		}
	}
	if p.Config == "" {
		p.Config = p.Home
	}
	if p.Data == "" {
		p.Data = filepath.Join(p.Home, "data")
	}
	if p.Logs == "" {
		p.Logs = filepath.Join(p.Home, "logs")
	}
	return p
}

func (a *agent) close() {
	for _, c := range a.out.Clients {
		_ = c.Close()
	}
}

// agentMeta is path.data/meta.json: the agent id survives restarts so that
// event ids, and so Elasticsearch deduplication, stay stable.
type agentMeta struct {
	UUID       string    `json:"uuid"`
	FirstStart time.Time `json:"first_start"`
}

func loadOrCreateMeta(dataPath string) (agentMeta, error) {
	p := filepath.Join(dataPath, "meta.json")
	b, err := os.ReadFile(p)
	if err == nil {
		var m agentMeta
		if err := json.Unmarshal(b, &m); err == nil && m.UUID != "" {
			return m, nil
		}
		// A damaged meta file must not stop the agent; a new id only
		// means events of this host get new ids from now on.
	} else if !errors.Is(err, os.ErrNotExist) {
		return agentMeta{}, fmt.Errorf("agent: read %s: %w", p, err)
	}
	m := agentMeta{UUID: newUUID(), FirstStart: time.Now().UTC()}
	if err := os.MkdirAll(dataPath, 0o750); err != nil {
		return agentMeta{}, fmt.Errorf("agent: create path.data %s: %w", dataPath, err)
	}
	b, _ = json.Marshal(m)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return agentMeta{}, fmt.Errorf("agent: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return agentMeta{}, fmt.Errorf("agent: write %s: %w", p, err)
	}
	return m, nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newLogger writes JSON lines (or text) to stderr or to a file under
// path.logs, as logging.* and -e say.
func newLogger(c loggingConfig, toStderr bool, logsPath string, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var w io.Writer = stderr
	var closer io.Closer = io.NopCloser(nil)
	if !toStderr && !c.ToStderr && c.ToFiles {
		dir := c.Files.Path
		if dir == "" {
			dir = logsPath
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("logging: create %s: %w", dir, err)
		}
		f, err := os.OpenFile(filepath.Join(dir, c.Files.Name+".ndjson"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("logging: %w", err)
		}
		w, closer = f, f
	}
	opts := &slog.HandlerOptions{Level: c.level()}
	var h slog.Handler
	if c.JSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), closer, nil
}
