//go:build !linux

package paths

import (
	"context"
	"errors"
)

// Prober is only implemented on Linux.
type Prober struct{ opts Options }

// New checks o.
func New(o Options) (*Prober, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	return &Prober{opts: o}, nil
}

// Method is the method asked for.
func (p *Prober) Method() Method { return p.opts.Method }

// Trace reports that the OS is not supported.
func (p *Prober) Trace(context.Context, Target) (Path, error) {
	return Path{}, errors.New("paths: probing reads the socket error queue (IP_RECVERR), which only Linux has: not supported on this OS")
}
