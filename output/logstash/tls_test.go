package logstash

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config/tlscfg/tlstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "fleutan test CA")
	other := tlstest.NewCA(t, "some other CA")
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherFile := tlstest.WriteFile(t, dir, "other.pem", other.PEM)
	srvCert, srvKey := ca.Issue(t, []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	wrongName, wrongNameKey := ca.Issue(t, []string{"logstash.example"}, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.Issue(t, []string{"fleutanbeat"}, x509.ExtKeyUsageClientAuth)
	cliCertFile, cliKeyFile := tlstest.WriteFile(t, dir, "client.pem", cliCert), tlstest.WriteFile(t, dir, "client.key", cliKey)
	pair := func(c, k []byte) tls.Certificate {
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Cert)

	for _, tc := range []struct {
		name    string
		server  *tls.Config
		host    string // "localhost" or "127.0.0.1"
		ssl     string
		wantErr string // "" when the events must arrive
	}{
		{"full with the right CA file", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q]}", caFile), ""},
		{"full with the right CA inline", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}}, "127.0.0.1",
			fmt.Sprintf("{certificate_authorities: [%q], verification_mode: full}", string(ca.PEM)), ""},
		{"full with a wrong CA", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q]}", otherFile), "certificate signed by unknown authority"},
		{"none with a wrong CA", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q], verification_mode: none}", otherFile), ""},
		{"full with a wrong host name", &tls.Config{Certificates: []tls.Certificate{pair(wrongName, wrongNameKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q]}", caFile), "valid for logstash.example, not localhost"},
		{"certificate mode ignores the host name", &tls.Config{Certificates: []tls.Certificate{pair(wrongName, wrongNameKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q], verification_mode: certificate}", caFile), ""},
		{"certificate mode still checks the chain", &tls.Config{Certificates: []tls.Certificate{pair(wrongName, wrongNameKey)}}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q], verification_mode: certificate}", otherFile), "certificate signed by unknown authority"},
		{"client certificate presented", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q], certificate: %q, key: %q}", caFile, cliCertFile, cliKeyFile), ""},
		{"client certificate missing", &tls.Config{Certificates: []tls.Certificate{pair(srvCert, srvKey)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}, "localhost",
			fmt.Sprintf("{certificate_authorities: [%q]}", caFile), "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newReceived()
			srv := startServer(t, "tls", rec, serverOpts{tls: tc.server})
			_, port, _ := net.SplitHostPort(srv.addr)
			logs := &logRecorder{}
			g := newOutput(t, yamlHosts(net.JoinHostPort(tc.host, port))+"timeout: 5s\nssl: "+tc.ssl+"\n", logs)
			b := pipeline.NewBatch([]pipeline.Event{testEvent(0), testEvent(1)})
			err := g.Clients[0].Publish(context.Background(), b)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				rec.waitDistinct(t, 2, 5*time.Second)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Publish = %v, want an error containing %q", err, tc.wantErr)
			}
			if n := rec.distinct(); n != 0 {
				t.Fatalf("%d events arrived over a rejected connection", n)
			}
			if w := logs.matching("WARN", tc.wantErr); len(w) != 1 {
				t.Fatalf("want the TLS error logged once, got %q", w)
			}
		})
	}
}

func TestTLSConfigErrorsAtStartup(t *testing.T) {
	dir := t.TempDir()
	notPEM := tlstest.WriteFile(t, dir, "junk.pem", []byte("not a certificate"))
	for _, tc := range []struct {
		ssl, want string
	}{
		{"{certificate_authorities: [/nonexistent/ca.pem]}", "no such file"},
		{fmt.Sprintf("{certificate_authorities: [%q]}", notPEM), "holds no PEM certificate"},
		{fmt.Sprintf("{certificate: %q, key: %q}", notPEM, notPEM), "ssl.certificate/ssl.key"},
	} {
		var c Config
		c = DefaultConfig()
		c.Hosts = []string{"localhost"}
		if err := decodeYAML("ssl: "+tc.ssl, &c); err != nil {
			t.Fatal(err)
		}
		_, err := newGroup(c, outputSettings())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ssl %s: err = %v, want %q", tc.ssl, err, tc.want)
		}
	}
}
