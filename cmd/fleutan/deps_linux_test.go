package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestToolLinksNoAgentPackages checks that the tool draws from the
// collector libraries only: no input adapter, pipeline, config or output
// package is linked into the built fleutan, so no view can go back to
// reading events. It reads the binary's symbol table, which works on the
// fleutan the kernel matrix's guest is given as well; a package's init
// task stays linked even when nothing else of it does.
func TestToolLinksNoAgentPackages(t *testing.T) {
	bin := os.Getenv("FLEUTANBEAT_FLEUTAN_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "fleutan")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("symbols of %s (built without -s?): %v", bin, err)
	}
	const mod = "github.com/fleutan/fleutanbeat/"
	banned := []string{
		"input.", // the agent's Input, Settings, Factory
		"input/flows/flowsinput.", "input/cpu/cpuinput.", "input/qdisc/qdiscinput.", "input/paths/pathsinput.",
		"pipeline.", "pipeline/", "config.", "config/", "output/",
	}
	linked := map[string]bool{}
	libs := 0
	for _, s := range syms {
		name, ok := strings.CutPrefix(s.Name, mod)
		if !ok {
			continue
		}
		for _, p := range []string{"input/flows.", "input/cpu.", "input/qdisc."} {
			if strings.HasPrefix(name, p) {
				libs++
			}
		}
		for _, b := range banned {
			if strings.HasPrefix(name, b) {
				linked[b] = true
			}
		}
	}
	if libs == 0 {
		t.Fatal("no symbol of the collector libraries: the symbol table is not what this test expects")
	}
	for _, b := range banned {
		if linked[b] {
			t.Errorf("%s%s* is linked into the tool", mod, b)
		}
	}
}
