package logstash

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"golang.org/x/net/proxy"
)

// socksDialer connects through a SOCKS5 proxy (RFC 1928, RFC 1929 for
// user/password) with golang.org/x/net/proxy. What it adds is Beats'
// proxy_use_local_resolver: by default the proxy resolves host names, as
// x/net does when given a name; with localDNS the name is resolved here
// and the proxy is asked for the address.
type socksDialer struct {
	proxy    string // host:port
	localDNS bool
	d        proxy.ContextDialer
}

func newSocksDialer(u *url.URL, localDNS bool, forward *net.Dialer) (*socksDialer, error) {
	var auth *proxy.Auth
	if u.User != nil {
		pass, _ := u.User.Password()
		auth = &proxy.Auth{User: u.User.Username(), Password: pass}
	}
	d, err := proxy.SOCKS5("tcp", u.Host, auth, forward)
	if err != nil {
		return nil, fmt.Errorf("socks5 proxy %s: %w", u.Host, err)
	}
	// SOCKS5 returns its own dialer, which has DialContext.
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("socks5 proxy %s: golang.org/x/net/proxy returned %T, which cannot dial under a context", u.Host, d)
	}
	return &socksDialer{proxy: u.Host, localDNS: localDNS, d: cd}, nil
}

// DialContext connects to addr (host:port) through the proxy. The
// handshake runs under ctx: the caller sets a deadline.
func (d *socksDialer) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if d.localDNS {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host) == nil {
			ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
			if err != nil {
				return nil, fmt.Errorf("socks5: resolving %s: %w", host, err)
			}
			addr = net.JoinHostPort(ips[0].String(), port)
		}
	}
	c, err := d.d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("socks5 proxy %s: %w", d.proxy, err)
	}
	return c, nil
}
