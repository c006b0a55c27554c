//go:build !linux

package kibana

import (
	"context"
	"testing"
)

func mqTraffic(ctx context.Context, t *testing.T) string {
	t.Skip("the TX queue data needs a Linux mq device")
	return ""
}
