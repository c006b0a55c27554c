package flowtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shortConns are the helper's commands for connections that live less than
// a period:
//
//	serve                      accept on the listener in the background; each
//	                           connection is read to EOF and closed
//	dialsend ADDR N            connect, send N bytes, close; replies the local
//	                           address once the server has closed its side
//	churn ADDR PER_SECOND SECONDS
//	                           start a dialsend of 100 bytes PER_SECOND times
//	                           a second for SECONDS, in the background
//	blast ADDR PER_SECOND SECONDS
//	                           dialsend of 100 bytes PER_SECOND times a second
//	                           for SECONDS from 16 goroutines; replies the
//	                           connections made and failed and the µs taken
//	holdfile, dropfile         open /dev/null and keep it; close the last one
//	churnlog                   wait for the churn; reply the local ports it
//	                           used, comma-separated: the process's own log
func shortConns(h *helperState, f []string) (string, error) {
	switch f[0] {
	case "serve":
		if h.ln == nil {
			return "", errors.New("no listener")
		}
		go func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}()
			}
		}(h.ln)
		return "", nil
	case "dialsend":
		if len(f) != 3 {
			return "", errors.New("usage: dialsend ADDR N")
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return "", err
		}
		return dialSend(f[1], n)
	case "churn":
		if len(f) != 4 {
			return "", errors.New("usage: churn ADDR PER_SECOND SECONDS")
		}
		rate, err1 := strconv.Atoi(f[2])
		secs, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || rate <= 0 {
			return "", errors.New("churn: PER_SECOND and SECONDS are numbers")
		}
		churnDone = make(chan churnLog, 1)
		go func() { churnDone <- churn(f[1], rate, secs) }()
		return "", nil
	case "blast":
		if len(f) != 4 {
			return "", errors.New("usage: blast ADDR PER_SECOND SECONDS")
		}
		rate, err1 := strconv.Atoi(f[2])
		secs, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || rate <= 0 {
			return "", errors.New("blast: PER_SECOND and SECONDS are numbers")
		}
		ok, failed, took := blast(f[1], rate, secs)
		return fmt.Sprintf("%d %d %d", ok, failed, took.Microseconds()), nil
	case "holdfile":
		f, err := os.Open(os.DevNull)
		if err != nil {
			return "", err
		}
		heldFiles = append(heldFiles, f)
		return "", nil
	case "dropfile":
		if len(heldFiles) == 0 {
			return "", errors.New("no file held")
		}
		err := heldFiles[len(heldFiles)-1].Close()
		heldFiles = heldFiles[:len(heldFiles)-1]
		return "", err
	case "churnlog":
		if churnDone == nil {
			return "", errors.New("no churn started")
		}
		r := <-churnDone
		return strings.Join(r.ports, ","), r.err
	}
	return "", errors.New("unknown command")
}

// dialSend connects, sends n bytes, closes its side and waits for the
// server's FIN (its read returns EOF), so the connection is closed on both
// sides when it returns.
func dialSend(addr string, n int) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	if _, err := c.Write(make([]byte, n)); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		return "", err
	}
	return local, nil
}

// churnDone is the helper process's running churn (one at a time);
// heldFiles are its files from holdfile.
var (
	churnDone chan churnLog
	heldFiles []*os.File
)

type churnLog struct {
	ports []string
	err   error
}

func churn(addr string, rate, secs int) churnLog {
	var r churnLog
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range rate * secs {
		<-tick.C
		local, err := dialSend(addr, 100)
		if err != nil {
			r.err = err
			return r
		}
		_, port, _ := net.SplitHostPort(local)
		r.ports = append(r.ports, port)
	}
	return r
}

// blast paces connections on a schedule (the i-th at start + i/rate) that
// workers take in turn, so a slow connection delays none of the others.
func blast(addr string, rate, secs int) (ok, failed int64, took time.Duration) {
	total := int64(rate * secs)
	interval := time.Second / time.Duration(rate)
	var next, okN, failN atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				if _, err := dialSend(addr, 100); err != nil {
					failN.Add(1)
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failN.Load(), time.Since(start)
}
