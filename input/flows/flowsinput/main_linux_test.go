package flowsinput

import (
	"testing"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
)

func TestMain(m *testing.M) {
	if fleetMain() {
		return
	}
	flowtest.Main(m)
}
