package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/kibana"
)

// Exit codes: 0 success, 1 unusable config or failed command, 2 bad usage.
const (
	exitOK     = 0
	exitConfig = 1
	exitUsage  = 2
)

// options are the flags every command accepts, as in Beats.
type options struct {
	configPath  string
	overrides   multiFlag
	toStderr    bool
	pathData    string
	pathHome    string
	logLevel    string
	hostfs      string
	strictPerms bool
	// httpprof is the loopback HOST:PORT of Go's profiles (run only).
	httpprof string
	// forRun is set by `run` alone: every other command builds the
	// outputs only to check them and must create no file (as in Beats,
	// where only run and setup change anything).
	forRun bool
	// setup only
	indexManagement bool
	dashboards      bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type command struct {
	name    string // "run", "test config"
	summary string
	usage   string
	run     func(o *options, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"run", "Run the agent (the default command)", "fleutanbeat [run] [flags]", cmdRun},
	{"setup", "Install index templates (--index-management) and Kibana dashboards (--dashboards)", "fleutanbeat setup [--index-management] [--dashboards] [flags]", cmdSetup},
	{"test config", "Check the configuration and exit", "fleutanbeat test config [flags]", cmdTestConfig},
	{"test output", "Check that the output is reachable and accepts the credentials", "fleutanbeat test output [flags]", cmdTestOutput},
	{"export config", "Print the effective configuration, secrets redacted", "fleutanbeat export config [flags]", cmdExportConfig},
	{"export template", "Print the Elasticsearch index templates", "fleutanbeat export template [flags]", cmdExportTemplate},
	{"export dashboards", "Print the Kibana saved objects (NDJSON)", "fleutanbeat export dashboards", cmdExportDashboards},
	{"version", "Print the version", "fleutanbeat version", cmdVersion},
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd, rest, err := pickCommand(args)
	if err != nil {
		fmt.Fprintf(stderr, "fleutanbeat: %v\n\n", err)
		topUsage(stderr)
		return exitUsage
	}
	if cmd == nil {
		topUsage(stdout)
		return exitOK
	}
	o := &options{strictPerms: true}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.configPath, "c", "", "")
	fs.StringVar(&o.configPath, "config", "", "")
	fs.Var(&o.overrides, "E", "")
	fs.BoolVar(&o.toStderr, "e", false, "")
	fs.StringVar(&o.pathData, "path.data", "", "")
	fs.StringVar(&o.pathHome, "path.home", "", "")
	fs.StringVar(&o.logLevel, "log.level", "", "")
	fs.StringVar(&o.hostfs, "hostfs", "", "")
	fs.StringVar(&o.hostfs, "system.hostfs", "", "")
	fs.BoolVar(&o.strictPerms, "strict.perms", true, "")
	if cmd.name == "run" {
		fs.StringVar(&o.httpprof, "httpprof", "", "")
	}
	if cmd.name == "setup" {
		fs.BoolVar(&o.indexManagement, "index-management", false, "")
		fs.BoolVar(&o.dashboards, "dashboards", false, "")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd)
			return exitOK
		}
		fmt.Fprintf(stderr, "fleutanbeat %s: %v (see fleutanbeat %s --help)\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleutanbeat %s: unexpected argument %q (see fleutanbeat %s --help)\n", cmd.name, fs.Arg(0), cmd.name)
		return exitUsage
	}
	return cmd.run(o, fs.Args(), stdout, stderr)
}

// pickCommand finds the command words before the flags; no words means run.
// A nil command with no error means top-level help was asked for.
func pickCommand(args []string) (*command, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		for _, a := range args {
			if a == "--help" || a == "-h" || a == "-help" {
				if len(args) == 1 {
					return nil, nil, nil
				}
			}
		}
		return &commands[0], args, nil
	}
	if args[0] == "help" {
		return nil, nil, nil
	}
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == commands[i].name {
			return &commands[i], args[len(words):], nil
		}
	}
	if args[0] == "test" || args[0] == "export" {
		sub := ""
		if len(args) > 1 {
			sub = args[1]
		}
		if sub == "" || sub == "--help" || sub == "-h" {
			return nil, nil, fmt.Errorf("%q needs a subcommand", args[0])
		}
		return nil, nil, fmt.Errorf("unknown command %q", args[0]+" "+sub)
	}
	return nil, nil, fmt.Errorf("unknown command %q", args[0])
}

const flagHelp = `Flags:
  -c, --config FILE     configuration file (default: fleutanbeat.yml in the
                        working directory, else next to the binary)
  -E KEY=VALUE          override a setting; VALUE is YAML (repeatable),
                        e.g. -E output.file.path=/tmp/out -E queue.mem.events=8192
  -e                    log to stderr instead of files
  --path.home DIR       home directory (default: the binary's directory)
  --path.data DIR       data directory (default: ${path.home}/data)
  --log.level LEVEL     debug, info, warning or error (default info)
  --hostfs DIR          where the host's root is mounted in a container: the
                        inputs read DIR/proc and DIR/sys (system.hostfs)
  --strict.perms=false  accept a config file writable by group or others
  -h, --help            show this help
`

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "fleutanbeat ships per-flow, per-core and per-queue network metrics of this host.\n\nUsage:\n  fleutanbeat [command] [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n%s\nRun 'fleutanbeat COMMAND --help' for one command.\n", flagHelp)
}

func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n\n", c.summary, c.usage)
	if c.name == "setup" {
		fmt.Fprintf(w, "Setup flags (neither: both):\n  --index-management    install the index templates in Elasticsearch\n  --dashboards          import the Kibana saved objects (setup.kibana.*;\n                        Kibana %s or later)\n\n", kibana.MinVersion)
	}
	if c.name == "run" {
		fmt.Fprint(w, "Run flags:\n  --httpprof HOST:PORT  serve Go's profiles (net/http/pprof) on a loopback\n                        address, e.g. 127.0.0.1:6060\n\n")
	}
	fmt.Fprint(w, flagHelp)
}

// resolveConfigPath applies the Beats lookup: -c as given, else
// fleutanbeat.yml in the working directory, else next to the binary.
func resolveConfigPath(o *options) string {
	if o.configPath != "" {
		return o.configPath
	}
	const name = "fleutanbeat.yml"
	if _, err := os.Stat(name); err == nil {
		return name
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return name
}

// flagOverrides turns the dedicated path and log flags into -E overrides so
// that one mechanism applies them; they win over -E as in Beats.
func flagOverrides(o *options) []string {
	out := append([]string(nil), o.overrides...)
	add := func(key, val string) {
		b, _ := yaml.Marshal(val)
		out = append(out, key+"="+strings.TrimSpace(string(b)))
	}
	if o.pathHome != "" {
		add("path.home", o.pathHome)
	}
	if o.pathData != "" {
		add("path.data", o.pathData)
	}
	if o.logLevel != "" {
		add("logging.level", o.logLevel)
	}
	if o.hostfs != "" {
		add("system.hostfs", o.hostfs)
	}
	return out
}

func cmdVersion(_ *options, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "fleutanbeat version %s (%s/%s), %s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
