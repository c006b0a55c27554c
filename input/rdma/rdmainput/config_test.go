package rdmainput

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Period.D() != 10*time.Second || !c.Counters || c.KernelQPs {
		t.Errorf("defaults %+v", c)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	c := DefaultConfig()
	c.Period = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "period: must be positive, got 0s") {
		t.Errorf("Validate() = %v", err)
	}
}
