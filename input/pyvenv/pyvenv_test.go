package pyvenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The helper is exercised in a child test process so that its skip and
// failure paths can be observed from outside.
func TestInterpreterSkipsFailsOrReturns(t *testing.T) {
	if os.Getenv("PYVENV_CHILD") == "1" {
		t.Log("python:", Interpreter(t, strings.Fields(os.Getenv("PYVENV_MODULES"))...))
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Any Python serves for the cases that need one: the run's, else the
	// one on PATH.
	py := os.Getenv("FLEUTANBEAT_PYTHON")
	if py == "" {
		py, _ = exec.LookPath("python3")
	}
	tests := []struct {
		name    string
		env     []string
		needPy  bool
		wantErr bool
		want    string
	}{
		{"unset skips", nil, false, false, "--- SKIP"},
		{"unset but required fails", []string{"FLEUTANBEAT_REQUIRE_TOOLS=1"}, false, true, "FLEUTANBEAT_REQUIRE_TOOLS=1"},
		{"not an interpreter fails", []string{"FLEUTANBEAT_PYTHON=/nonexistent/python", "PYVENV_MODULES=json"}, false, true, "/nonexistent/python"},
		{"missing module fails", []string{"FLEUTANBEAT_PYTHON=" + py, "PYVENV_MODULES=json no_such_module_fleutan"}, true, true, "no_such_module_fleutan"},
		{"present modules pass", []string{"FLEUTANBEAT_PYTHON=" + py, "PYVENV_MODULES=json hashlib"}, true, false, "python: " + py},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needPy && py == "" {
				Interpreter(t) // skips, or fails under FLEUTANBEAT_REQUIRE_TOOLS=1
			}
			cmd := exec.Command(self, "-test.run=^TestInterpreterSkipsFailsOrReturns$", "-test.v")
			cmd.Env = append(cleanEnv(), "PYVENV_CHILD=1")
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) {
				t.Errorf("err %v (want error %v), output lacks %q:\n%s", err, tt.wantErr, tt.want, out)
			}
		})
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLEUTANBEAT_PYTHON=") && !strings.HasPrefix(kv, "FLEUTANBEAT_REQUIRE_TOOLS=") {
			env = append(env, kv)
		}
	}
	return env
}
