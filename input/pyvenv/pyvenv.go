// Package pyvenv gives tests the Python interpreter of the virtualenv that
// `make test` builds (`make venv`) from the packages pinned in
// .ci/python-requirements.txt: reference implementations and checkers that
// the Go code is compared against.
//
// Tests that need it skip when FLEUTANBEAT_PYTHON is not set, unless
// FLEUTANBEAT_REQUIRE_TOOLS=1 (set by .ci/run) turns the skip into a
// failure.
package pyvenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Interpreter returns the Python named by FLEUTANBEAT_PYTHON once it has
// checked that it imports every module in modules. Without the variable
// the test skips, unless FLEUTANBEAT_REQUIRE_TOOLS=1 makes that a failure;
// an interpreter that is named but cannot run or import a module always
// fails the test, since the run asked for it.
func Interpreter(t testing.TB, modules ...string) string {
	t.Helper()
	py := os.Getenv("FLEUTANBEAT_PYTHON")
	if py == "" {
		if os.Getenv("FLEUTANBEAT_REQUIRE_TOOLS") == "1" {
			t.Fatal("FLEUTANBEAT_PYTHON is not set and FLEUTANBEAT_REQUIRE_TOOLS=1: run through `make test`, or `make venv` and set FLEUTANBEAT_PYTHON=$PWD/.venv/bin/python")
		}
		t.Skip("no reference tools: set FLEUTANBEAT_PYTHON (`make venv` builds .venv/bin/python; make test sets it)")
	}
	if len(modules) == 0 {
		return py
	}
	// One interpreter start checks them all; its traceback names the
	// module that is missing.
	code := "import " + strings.Join(modules, ", ")
	if out, err := exec.Command(py, "-c", code).CombinedOutput(); err != nil {
		t.Fatalf("FLEUTANBEAT_PYTHON=%s cannot %q (run `make venv`): %v\n%s", py, code, err, out)
	}
	return py
}
