package tlscfg

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/config/tlscfg/tlstest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want []string // every error expected, in order; none for a valid section
	}{
		{"zero value", Config{}, nil},
		{"modes", Config{VerificationMode: "strict"}, nil},
		{"certificate only", Config{VerificationMode: "certificate", SupportedProtocols: []string{"TLSv1.3"}}, nil},
		{"all wrong at once", Config{VerificationMode: "strictest", Key: "k.pem", SupportedProtocols: []string{"TLSv1.2", "SSLv3"}}, []string{
			`verification_mode: "strictest" is not one of full, strict, certificate, none`,
			"certificate: certificate and key must be set together",
			`supported_protocols.1: "SSLv3" is not supported (use TLSv1.2 or TLSv1.3)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
			// Keys are relative, for config.Prefix.
			if p := config.Prefix("ssl", err); err != nil && !strings.HasPrefix(p.Error(), "ssl.") {
				t.Errorf("prefixed: %v", p)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certPEM := ca.PEM
	// Named for no host the test dials: mode certificate checks the chain
	// alone.
	srvPEM, _ := ca.Issue(t, []string{"server.example"}, x509.ExtKeyUsageServerAuth)
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	cliPEM, keyPEM := ca.Issue(t, []string{"fleutanbeat"}, x509.ExtKeyUsageClientAuth)
	cliFile := tlstest.WriteFile(t, dir, "client.pem", cliPEM)
	junk := tlstest.WriteFile(t, dir, "junk.pem", []byte("not PEM"))
	tests := []struct {
		name    string
		c       Config
		wantErr string
		check   func(t *testing.T, tc *tls.Config)
	}{
		{"defaults: TLS 1.2 and up, full verification", Config{}, "", func(t *testing.T, tc *tls.Config) {
			if tc.MinVersion != tls.VersionTLS12 || tc.MaxVersion != 0 || tc.InsecureSkipVerify || tc.RootCAs != nil {
				t.Errorf("got min %x max %x skip %v roots %v", tc.MinVersion, tc.MaxVersion, tc.InsecureSkipVerify, tc.RootCAs)
			}
		}},
		{"protocols bound the versions", Config{SupportedProtocols: []string{"TLSv1.3"}}, "", func(t *testing.T, tc *tls.Config) {
			if tc.MinVersion != tls.VersionTLS13 || tc.MaxVersion != tls.VersionTLS13 {
				t.Errorf("got min %x max %x", tc.MinVersion, tc.MaxVersion)
			}
		}},
		{"CA from a file and inline, client pair", Config{CertificateAuthorities: []string{caFile, string(certPEM)}, Certificate: cliFile, Key: string(keyPEM)}, "", func(t *testing.T, tc *tls.Config) {
			if tc.RootCAs == nil || len(tc.Certificates) != 1 {
				t.Errorf("roots %v, %d certificates", tc.RootCAs, len(tc.Certificates))
			}
		}},
		{"none skips verification", Config{VerificationMode: "none"}, "", func(t *testing.T, tc *tls.Config) {
			if !tc.InsecureSkipVerify || tc.VerifyConnection != nil {
				t.Error("verification not off")
			}
		}},
		{"certificate verifies the chain by hand", Config{VerificationMode: "certificate", CertificateAuthorities: []string{caFile}}, "", func(t *testing.T, tc *tls.Config) {
			if !tc.InsecureSkipVerify || tc.VerifyConnection == nil {
				t.Fatal("no chain check")
			}
			block, _ := pem.Decode(srvPEM)
			cert, _ := x509.ParseCertificate(block.Bytes)
			if err := tc.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}); err != nil {
				t.Errorf("chain of the trusted CA refused: %v", err)
			}
			if err := tc.VerifyConnection(tls.ConnectionState{}); err == nil {
				t.Error("no certificate accepted")
			}
			other := tlstest.NewCA(t, "other CA").Cert
			if err := tc.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{other}}); err == nil {
				t.Error("a certificate of another CA accepted")
			}
		}},
		{"missing CA file", Config{CertificateAuthorities: []string{filepath.Join(dir, "nope.pem")}}, "ssl.certificate_authorities: open ", nil},
		{"CA file without PEM", Config{CertificateAuthorities: []string{junk}}, "ssl.certificate_authorities: " + junk + " holds no PEM certificate", nil},
		{"inline junk is not echoed", Config{CertificateAuthorities: []string{"-----BEGIN junk"}}, "ssl.certificate_authorities: inline PEM holds no PEM certificate", nil},
		{"bad pair", Config{Certificate: junk, Key: junk}, "ssl.certificate/ssl.key: ", nil},
		{"missing key file", Config{Certificate: cliFile, Key: filepath.Join(dir, "nope.pem")}, "ssl.key: open ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tt.c.Build()
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, tc)
		})
	}
}

func TestIsSet(t *testing.T) {
	if (Config{}).IsSet() {
		t.Error("zero value is set")
	}
	for _, c := range []Config{{Key: "k"}, {VerificationMode: "none"}, {SupportedProtocols: []string{"TLSv1.3"}}, {CertificateAuthorities: []string{"x"}}} {
		if !c.IsSet() {
			t.Errorf("%+v is not set", c)
		}
	}
}
