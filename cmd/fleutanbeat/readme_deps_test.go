package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeListsTheDirectDependencies: the README's Development section
// names exactly go.mod's direct requirements, so neither can change
// without the other.
func TestReadmeListsTheDirectDependencies(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var direct []string
	inBlock := false
	for _, line := range strings.Split(string(mod), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			inBlock = true
		case line == ")":
			inBlock = false
		case strings.HasPrefix(line, "require ") && !strings.HasSuffix(line, "("):
			if f := strings.Fields(line); len(f) >= 3 && !strings.Contains(line, "// indirect") {
				direct = append(direct, f[1])
			}
		case inBlock && line != "" && !strings.Contains(line, "// indirect"):
			direct = append(direct, strings.Fields(line)[0])
		}
	}
	if len(direct) == 0 {
		t.Fatal("no direct requirement found in go.mod")
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, dev, ok := strings.Cut(string(readme), "\n## Development\n")
	if !ok {
		t.Fatal("README.md has no Development section")
	}
	list, _, _ := strings.Cut(dev, "\n- eBPF")
	_, list, ok = strings.Cut(list, "dependencies (go.mod's direct requirements):")
	if !ok {
		t.Fatal("README.md's Development section has no dependency list")
	}
	// The first module path of each item, before its explanation; items
	// may name further modules that come with it ("with ...").
	item := regexp.MustCompile(`(?m)^  - ([a-z0-9.-]+\.[a-z]+/[^\s(;,]+)`)
	also := regexp.MustCompile(`\b((?:github\.com|golang\.org|google\.golang\.org|gopkg\.in)/[^\s(;,)]+)`)
	var listed []string
	for _, m := range item.FindAllStringSubmatch(list, -1) {
		listed = append(listed, m[1])
	}
	named := map[string]bool{}
	for _, m := range also.FindAllStringSubmatch(list, -1) {
		named[strings.TrimSuffix(m[1], ".")] = true
	}
	for _, d := range direct {
		if !named[d] {
			t.Errorf("go.mod requires %s directly; README.md's dependency list does not name it", d)
		}
	}
	for _, l := range listed {
		if !slices.Contains(direct, l) {
			t.Errorf("README.md lists %s, which go.mod does not require directly", l)
		}
	}
}
