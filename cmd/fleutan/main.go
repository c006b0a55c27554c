// Command fleutan is the interactive tool of the original fleutan project:
// bar charts in the terminal of how flows spread over cores and TX queues,
// their latency and their volumes, and the network paths of their peers,
// drawn from the same collectors as the fleutanbeat agent, with no
// Elasticsearch.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// version is set at build time (-X main.version=...).
var version = "dev"

const usage = `Usage: fleutan COMMAND [options]

Commands:
  flows     views of the host's flows: --cpu [fl_asoc|gen], -q, --lat, --vol
  paths     the network paths of the flows' peers: --load, --delta [--dsts ...]
  rdma      RDMA queue pairs per process with the cores it ran on
  version   print the version

Run 'fleutan flows --help', 'fleutan paths --help' or 'fleutan rdma --help'
for the views and their options.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit status: 0, 1 on errors,
// 2 on usage errors. Every error is one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		_, _ = io.WriteString(stdout, usage)
		return 0
	case "version", "--version":
		fmt.Fprintf(stdout, "fleutan %s\n", version)
		return 0
	case "flows":
		o, err := parseFlows(args[1:], stdout)
		if o == nil { // a usage error, or --help (err nil: status 0)
			return fail(stderr, err)
		}
		st, log := viewSetup(o.color, stdout, stderr, getenv)
		return fail(stderr, runFlows(ctx, o, stdout, st, log))
	case "paths":
		o, err := parsePaths(args[1:], stdout)
		if o == nil { // a usage error, or --help (err nil: status 0)
			return fail(stderr, err)
		}
		st, log := viewSetup(o.color, stdout, stderr, getenv)
		return fail(stderr, runPaths(ctx, o, stdout, st, log))
	case "rdma":
		o, err := parseRDMA(args[1:], stdout)
		if o == nil { // a usage error, or --help (err nil: status 0)
			return fail(stderr, err)
		}
		st, log := viewSetup(o.color, stdout, stderr, getenv)
		return fail(stderr, runFlows(ctx, o, stdout, st, log))
	}
	return fail(stderr, usagef("unknown command %q (see fleutan --help)", args[0]))
}

// viewSetup is what every view runs with: the terminal's width and colour
// (--color auto: on a terminal only) and a logger of one line per record
// on stderr.
func viewSetup(color string, stdout, stderr io.Writer, getenv func(string) string) (Style, *slog.Logger) {
	out, isTerm := stdoutTerminal(stdout)
	st := Style{Width: termWidth(out, getenv), Color: color == "always" || (color == "auto" && isTerm)}
	return st, slog.New(&lineHandler{mu: &sync.Mutex{}, w: stderr})
}

// fail prints err as one line and returns its exit status.
func fail(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(stderr, "fleutan: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// stdoutTerminal reports whether w is a terminal, and its descriptor.
func stdoutTerminal(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, isTerminal(fd)
}

// defaultWidth is used when neither the terminal nor COLUMNS says.
const defaultWidth = 100

// termWidth is the terminal's width (TIOCGWINSZ on stdout), else the
// COLUMNS variable, else defaultWidth.
func termWidth(fd int, getenv func(string) string) int {
	if fd >= 0 {
		if w, ok := terminalWidth(fd); ok && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return defaultWidth
}

// lineHandler prints the collectors' warnings as one line each:
// "fleutan: warning: MESSAGE (key=value ...)".
type lineHandler struct {
	mu    *sync.Mutex // inputs log from their own goroutines
	w     io.Writer
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("fleutan: ")
	if r.Level >= slog.LevelError {
		b.WriteString("error: ")
	} else {
		b.WriteString("warning: ")
	}
	b.WriteString(r.Message)
	var kv []string
	add := func(a slog.Attr) bool {
		kv = append(kv, a.Key+"="+a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if len(kv) > 0 {
		b.WriteString(" (" + strings.Join(kv, ", ") + ")")
	}
	line := strings.Join(strings.Fields(b.String()), " ")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line+"\n")
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{mu: h.mu, w: h.w, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
