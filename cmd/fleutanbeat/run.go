package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/fleutan/fleutanbeat/cmd/fleutanbeat/queryapi"
	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/diskqueue"
)

func discardLogger(loggingConfig, config.Paths) (*slog.Logger, error) {
	return slog.New(slog.DiscardHandler), nil
}

func cmdTestConfig(o *options, _ []string, stdout, stderr io.Writer) int {
	a, err := buildAgent(o, discardLogger)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", errorLines(err))
		return exitConfig
	}
	a.close()
	fmt.Fprintln(stdout, "Config OK")
	return exitOK
}

func cmdExportConfig(o *options, _ []string, stdout, stderr io.Writer) int {
	a, err := buildAgent(o, discardLogger)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", errorLines(err))
		return exitConfig
	}
	a.close()
	b, err := config.Redacted(a.root)
	if err != nil {
		fmt.Fprintf(stderr, "export config: %v\n", err)
		return exitConfig
	}
	_, _ = stdout.Write(b)
	return exitOK
}

func cmdRun(o *options, _ []string, _, stderr io.Writer) int {
	o.forRun = true
	var logCloser io.Closer
	a, err := buildAgent(o, func(c loggingConfig, p config.Paths) (*slog.Logger, error) {
		l, cl, err := newLogger(c, o.toStderr, p.Logs, stderr)
		logCloser = cl
		return l, err
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", errorLines(err))
		return exitConfig
	}
	defer logCloser.Close()
	if o.httpprof != "" {
		srv, _, err := startHTTPProf(o.httpprof)
		if err != nil {
			fmt.Fprintf(stderr, "fleutanbeat: %v\n", err)
			a.close()
			return exitUsage
		}
		defer srv.Close()
		a.log.Info("serving Go's profiles", "httpprof", o.httpprof)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := a.run(ctx); err != nil {
		a.log.Error("fleutanbeat stopped with an error", "error", err)
		fmt.Fprintf(stderr, "fleutanbeat: %v\n", err)
		return exitConfig
	}
	return exitOK
}

// probeOutput stops the agent before it starts when the output's server
// is one it can never deliver to (output.Prober); one client answers for
// the group, whose workers share the configuration.
func probeOutput(ctx context.Context, clients []pipeline.Output) error {
	for _, c := range clients {
		if p, ok := c.(output.Prober); ok {
			return p.Probe(ctx)
		}
	}
	return nil
}

// run starts the output workers, then the inputs, and on ctx's end stops
// the inputs first and drains the queue for up to shutdown_timeout.
func (a *agent) run(ctx context.Context) error {
	meta, err := loadOrCreateMeta(a.paths.Data)
	if err != nil {
		a.close()
		return err
	}
	hostname, _ := os.Hostname()
	name := a.cfg.Name
	if name == "" {
		name = hostname
	}
	info := pipeline.AgentInfo{ID: meta.UUID, Name: name, Type: "fleutanbeat", Version: version, EphemeralID: newUUID()}
	var fields pipeline.M
	if len(a.cfg.Fields) > 0 {
		fields = pipeline.M{}
		for k, v := range a.cfg.Fields {
			fields.Put(k, v)
		}
	}
	q := a.queue.Mem
	if a.out.FlushTimeout > 0 {
		q.Flush.Timeout = config.Duration(a.out.FlushTimeout)
	}
	var disk *diskqueue.Queue
	var qimpl pipeline.Queue
	if a.disk != nil {
		// Records of the previous run are read first, before anything the
		// inputs of this run publish.
		disk, err = diskqueue.Open(*a.disk, diskqueue.Settings{Logger: a.log, Metrics: a.metrics})
		if err != nil {
			a.close()
			return err
		}
		qimpl = disk
		defer func() {
			if err := disk.Release(); err != nil {
				a.log.Warn("disk queue: release", "error", err)
			}
		}()
	}
	if err := probeOutput(ctx, a.out.Clients); err != nil {
		a.close()
		return err
	}
	a.metrics.Text(pipeline.MetricOutputType).Set(a.outName)
	p := pipeline.New(pipeline.Settings{
		Logger: a.log, Metrics: a.metrics, Agent: info, Processors: a.processors,
		Tags: a.cfg.Tags, Fields: fields, FieldsUnderRoot: a.cfg.FieldsUnderRoot,
		Namespace: a.out.Namespace,
		Queue:     q, QueueImpl: qimpl, Outputs: a.out.Clients, BatchSize: a.out.BatchSize,
		Encode: codec.AppendFields,
	})
	var mon *monitor
	if a.http.Enabled {
		var api http.Handler
		if a.latest != nil {
			api = queryapi.New(queryapi.Options{Latest: a.latest, Inputs: a.apiInputs(), Logger: a.log})
		}
		mon, err = startMonitor(a.http, a.metrics, info, hostname, api, a.log)
		if err != nil {
			a.close()
			return err
		}
		defer mon.Close()
	}
	p.Start()
	a.log.Info("fleutanbeat started", "version", version, "agent.id", info.ID, "output", a.outName,
		"inputs", len(a.inputs), "path.data", a.paths.Data)

	inCtx, stopInputs := context.WithCancel(ctx)
	defer stopInputs()
	var wg sync.WaitGroup
	failed := make(chan struct{}, len(a.inputs))
	for _, in := range a.inputs {
		pub := p.Client(pipeline.ClientConfig{Input: in.typ, Processors: in.processors})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.in.Run(inCtx, pub); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, pipeline.ErrQueueClosed) {
				a.log.Error("input stopped", "input", in.typ, "error", err)
				failed <- struct{}{}
			}
		}()
	}
	metricsDone := make(chan struct{})
	if a.logging.Metrics.Enabled {
		go func() {
			defer close(metricsDone)
			logMetrics(inCtx, a.log, a.metrics, a.logging.Metrics.Period.D())
		}()
	} else {
		close(metricsDone)
	}

	allFailed := false
	inputsDone := make(chan struct{})
	go func() { wg.Wait(); close(inputsDone) }()
	select {
	case <-ctx.Done():
		a.log.Info("stopping: signal received")
	case <-inputsDone:
		allFailed = len(failed) > 0 && len(failed) == len(a.inputs)
		a.log.Warn("stopping: every input has stopped")
	}
	stopInputs()
	<-inputsDone
	<-metricsDone

	timeout := a.cfg.ShutdownTimeout.D()
	drainCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	undelivered := p.Close(drainCtx)
	if disk != nil {
		// Release before the final stats: they then show what stays on
		// disk for the next run.
		if err := disk.Release(); err != nil {
			a.log.Warn("disk queue: release", "error", err)
		}
	}
	snap := a.metrics.Tree()
	if undelivered > 0 && disk != nil {
		a.log.Info("shutdown: undelivered events stay in the disk queue for the next run", "undelivered", undelivered)
	} else if undelivered > 0 {
		a.log.Warn("shutdown: events were not delivered", "undelivered", undelivered, "shutdown_timeout", timeout.String())
	}
	a.log.Info("fleutanbeat stopped", "undelivered", undelivered, "stats", map[string]any(snap))
	if allFailed {
		return fmt.Errorf("every input failed; see the log")
	}
	return nil
}

// logMetrics logs the counters that changed in each period, as Beats'
// "Non-zero metrics in the last 30s" line.
func logMetrics(ctx context.Context, log *slog.Logger, m *pipeline.Metrics, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	last := map[string]int64{}
	lastText := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		attrs := []any{}
		for _, s := range m.Snapshot() {
			if s.IsText {
				// A text is logged when it is new or changed.
				if lastText[s.Name] != s.Text {
					lastText[s.Name] = s.Text
					attrs = append(attrs, s.Name, s.Text)
				}
				continue
			}
			key := s.Name
			if s.Label != "" {
				key += "." + s.Value
			}
			v := s.N
			if !s.Gauge {
				v -= last[key]
				last[key] = s.N
			}
			if v != 0 {
				attrs = append(attrs, key, v)
			}
		}
		log.Info("Non-zero metrics in the last "+period.String(), attrs...)
	}
}
