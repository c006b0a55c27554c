package logstash

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// testCA is a CA the test generates, able to sign server and client
// certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key for the given names (IP addresses
// become IP SANs).
func (ca *testCA) issue(t testing.TB, usage x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "fleutan test CA")
	other := newTestCA(t, "some other CA")
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	otherFile := writeFile(t, dir, "other.pem", other.pem)
	srvCert, srvKey := ca.issue(t, x509.ExtKeyUsageServerAuth, "localhost", "127.0.0.1")
	wrongName, wrongNameKey := ca.issue(t, x509.ExtKeyUsageServerAuth, "logstash.example")
	cliCert, cliKey := ca.issue(t, x509.ExtKeyUsageClientAuth, "fleutanbeat")
	cliCertFile, cliKeyFile := writeFile(t, dir, "client.pem", cliCert), writeFile(t, dir, "client.key", cliKey)
	pair := func(c, k []byte) tls.Certificate {
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)

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
			fmt.Sprintf("{certificate_authorities: [%q], verification_mode: full}", string(ca.pem)), ""},
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
	notPEM := writeFile(t, dir, "junk.pem", []byte("not a certificate"))
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
