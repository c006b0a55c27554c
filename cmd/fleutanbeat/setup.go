package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/kibana"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/opensearch"
)

// engines are the outputs that write to a search engine: setup, test
// output and export template serve each with its own engine.
var engines = map[string]*elasticsearch.Engine{
	"elasticsearch": elasticsearch.Elasticsearch,
	"opensearch":    opensearch.Engine,
}

// esConfig builds the agent from the config and returns the active
// Elasticsearch or OpenSearch output's settings, or an error naming the
// active output.
func esConfig(o *options, what string) (*agent, elasticsearch.Config, error) {
	a, err := buildAgent(o, discardLogger)
	if err != nil {
		return nil, elasticsearch.Config{}, err
	}
	a.close()
	eng, ok := engines[a.outName]
	if !ok {
		return nil, elasticsearch.Config{}, fmt.Errorf("%s needs output.elasticsearch or output.opensearch; the active output is output.%s", what, a.outName)
	}
	c, err := elasticsearch.DecodeWithSetupFor(eng, a.outRaw, a.cfg.Setup)
	return a, c, err
}

// cmdSetup prepares the destination: index templates in Elasticsearch
// (--index-management) and saved objects in Kibana (--dashboards); with
// neither flag both, as in Beats.
func cmdSetup(o *options, _ []string, stdout, stderr io.Writer) int {
	both := !o.indexManagement && !o.dashboards
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if o.indexManagement || both {
		a, c, err := esConfig(o, "setup --index-management")
		if err != nil {
			fmt.Fprintln(stderr, errorLines(err))
			return exitConfig
		}
		if err := elasticsearch.Setup(ctx, c, a.outSettings); err != nil {
			fmt.Fprintf(stderr, "setup --index-management: %v\n", err)
			return exitConfig
		}
		fmt.Fprintf(stdout, "Index templates installed in %s (component templates and one composable template per dataset).\n", c.Engine.Product)
	}
	if o.dashboards || both {
		a, err := buildAgent(o, discardLogger)
		if err != nil {
			fmt.Fprintln(stderr, errorLines(err))
			return exitConfig
		}
		a.close()
		if a.outName == "opensearch" {
			// The bundle is Kibana's (Lens, Kibana 8 dashboards), which
			// OpenSearch Dashboards cannot import.
			msg := "the Kibana saved objects do not import into OpenSearch Dashboards; " +
				"import the index patterns and saved searches of kibana/opensearch/fleutan.ndjson instead (kibana/opensearch/README.md)"
			if !both {
				fmt.Fprintf(stderr, "setup --dashboards: %s\n", msg)
				return exitConfig
			}
			fmt.Fprintf(stdout, "Dashboards skipped: %s.\n", msg)
			return exitOK
		}
		raw, _ := a.cfg.Setup.Child("kibana")
		kc, err := kibana.Decode(raw)
		if err != nil {
			fmt.Fprintln(stderr, errorLines(err))
			return exitConfig
		}
		if err := kibana.Import(ctx, kc, stdout); err != nil {
			fmt.Fprintf(stderr, "setup --dashboards: %v\n", err)
			return exitConfig
		}
	}
	return exitOK
}

func cmdExportDashboards(_ *options, _ []string, stdout, _ io.Writer) int {
	_, _ = stdout.Write(kibana.Objects())
	return exitOK
}

func cmdTestOutput(o *options, _ []string, stdout, stderr io.Writer) int {
	a, err := buildAgent(o, discardLogger)
	if err != nil {
		fmt.Fprintln(stderr, errorLines(err))
		return exitConfig
	}
	a.close()
	switch a.outName {
	case "elasticsearch", "opensearch":
		c, err := elasticsearch.DecodeWithSetupFor(engines[a.outName], a.outRaw, a.cfg.Setup)
		if err != nil {
			fmt.Fprintln(stderr, errorLines(err))
			return exitConfig
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D()+5*time.Second)
		defer cancel()
		if err := elasticsearch.TestOutput(ctx, c, stdout); err != nil {
			fmt.Fprintf(stderr, "test output: %v\n", err)
			return exitConfig
		}
		return exitOK
	case "file", "console":
		for _, c := range a.out.Clients {
			if ch, ok := c.(output.Checker); ok {
				if err := ch.Check(); err != nil {
					fmt.Fprintf(stderr, "test output: %v\n", err)
					return exitConfig
				}
			}
		}
		fmt.Fprintf(stdout, "output.%s: OK\n", a.outName)
		return exitOK
	}
	fmt.Fprintf(stderr, "test output: not available for output.%s; its connection is checked when the agent starts\n", a.outName)
	return exitConfig
}

// cmdExportTemplate prints the templates whatever output is active, as
// Beats do: it contacts nothing. The settings come from
// output.elasticsearch when it is the active output (namespace, mode) and
// from setup.template; otherwise the defaults apply.
func cmdExportTemplate(o *options, _ []string, stdout, stderr io.Writer) int {
	a, err := buildAgent(o, discardLogger)
	if err != nil {
		fmt.Fprintln(stderr, errorLines(err))
		return exitConfig
	}
	a.close()
	esRaw, eng := a.outRaw, engines[a.outName]
	if eng == nil {
		esRaw, eng = config.Raw{}, elasticsearch.Elasticsearch
	}
	c, err := elasticsearch.DecodeWithSetupFor(eng, esRaw, a.cfg.Setup)
	if err != nil {
		fmt.Fprintln(stderr, errorLines(err))
		return exitConfig
	}
	if err := elasticsearch.ExportTemplates(stdout, c); err != nil {
		fmt.Fprintf(stderr, "export template: %v\n", err)
		return exitConfig
	}
	return exitOK
}
