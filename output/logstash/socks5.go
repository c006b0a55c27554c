package logstash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
)

// A SOCKS5 CONNECT is four small messages (RFC 1928, RFC 1929 for
// user/password); writing them here avoids a dependency for ~100 lines.

const (
	socksVersion   = 5
	socksNoAuth    = 0x00
	socksUserPass  = 0x02
	socksNoMethods = 0xff
	socksConnect   = 0x01
	socksIPv4      = 0x01
	socksDomain    = 0x03
	socksIPv6      = 0x04
)

var socksReplies = map[byte]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// socksDialer connects through a SOCKS5 proxy.
type socksDialer struct {
	proxy    string // host:port
	user     *url.Userinfo
	localDNS bool
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext connects to addr (host:port) through the proxy. The
// handshake runs under ctx: the caller sets a deadline.
func (d *socksDialer) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("socks5: bad port in %q", addr)
	}
	if d.localDNS {
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
			if err != nil {
				return nil, fmt.Errorf("socks5: resolving %s: %w", host, err)
			}
			host = ips[0].String()
		}
	}
	c, err := d.dial(ctx, "tcp", d.proxy)
	if err != nil {
		return nil, fmt.Errorf("socks5 proxy %s: %w", d.proxy, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = socksHandshake(c, d.user, host, port)
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("socks5 proxy %s: %w", d.proxy, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("socks5 proxy %s: %w", d.proxy, err)
	}
	return c, nil
}

func socksHandshake(rw io.ReadWriter, user *url.Userinfo, host string, port int) error {
	methods := []byte{socksVersion, 1, socksNoAuth}
	if user != nil {
		methods = []byte{socksVersion, 2, socksNoAuth, socksUserPass}
	}
	if _, err := rw.Write(methods); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(rw, sel[:]); err != nil {
		return fmt.Errorf("reading method selection: %w", err)
	}
	if sel[0] != socksVersion {
		return fmt.Errorf("not a SOCKS5 server (version byte %d)", sel[0])
	}
	switch sel[1] {
	case socksNoAuth:
	case socksUserPass:
		if user == nil {
			return errors.New("proxy requires a user name and password (give them in proxy_url)")
		}
		if err := socksAuth(rw, user); err != nil {
			return err
		}
	case socksNoMethods:
		return errors.New("proxy accepts none of our authentication methods")
	default:
		return fmt.Errorf("proxy chose unsupported authentication method %d", sel[1])
	}

	req := []byte{socksVersion, socksConnect, 0}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			req = append(append(req, socksIPv4), ip4...)
		} else {
			req = append(append(req, socksIPv6), ip.To16()...)
		}
	} else {
		if len(host) > 255 {
			return fmt.Errorf("host name %q is longer than 255 bytes", host)
		}
		req = append(append(req, socksDomain, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := rw.Write(req); err != nil {
		return err
	}
	return readSocksReply(rw)
}

func socksAuth(rw io.ReadWriter, user *url.Userinfo) error {
	name := user.Username()
	pass, _ := user.Password()
	if len(name) > 255 || len(pass) > 255 {
		return errors.New("proxy user name and password must be at most 255 bytes each")
	}
	msg := append([]byte{1, byte(len(name))}, name...)
	msg = append(append(msg, byte(len(pass))), pass...)
	if _, err := rw.Write(msg); err != nil {
		return err
	}
	var st [2]byte
	if _, err := io.ReadFull(rw, st[:]); err != nil {
		return fmt.Errorf("reading authentication status: %w", err)
	}
	if st[1] != 0 {
		return errors.New("proxy rejected the user name or password")
	}
	return nil
}

// readSocksReply consumes the CONNECT reply including its bound address, so
// that the next byte read is the destination's.
func readSocksReply(r io.Reader) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("reading CONNECT reply: %w", err)
	}
	if hdr[0] != socksVersion {
		return fmt.Errorf("bad CONNECT reply version %d", hdr[0])
	}
	if hdr[1] != 0 {
		msg, ok := socksReplies[hdr[1]]
		if !ok {
			msg = fmt.Sprintf("reply code %d", hdr[1])
		}
		return fmt.Errorf("CONNECT refused: %s", msg)
	}
	var n int
	switch hdr[3] {
	case socksIPv4:
		n = 4
	case socksIPv6:
		n = 16
	case socksDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return fmt.Errorf("reading CONNECT reply: %w", err)
		}
		n = int(l[0])
	default:
		return fmt.Errorf("bad address type %d in CONNECT reply", hdr[3])
	}
	if _, err := io.ReadFull(r, make([]byte, n+2)); err != nil {
		return fmt.Errorf("reading CONNECT reply: %w", err)
	}
	return nil
}
