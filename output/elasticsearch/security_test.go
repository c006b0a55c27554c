package elasticsearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config/tlscfg/tlstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

const (
	secUser = "fleutan_writer"
	secPass = "fleutan-secret-1"
)

// TestRealSecurityAuthAndTLS starts a node with security and HTTPS on,
// with a CA made here and a file-realm user, then checks basic auth, a
// wrong password, a wrong CA and the verification modes.
func TestRealSecurityAuthAndTLS(t *testing.T) {
	version := estest.Version(t)
	dir := estest.NodeDir(t, "secure")
	home := estest.Script(t, "fetch", version)
	java := estest.Script(t, "java", version)
	if out, err := exec.Command("cp", "-r", filepath.Join(home, "config"), filepath.Join(dir, "config")).CombinedOutput(); err != nil {
		t.Fatalf("copy config: %v: %s", err, out)
	}
	ca := tlstest.NewCA(t, "fleutan test CA")
	// 127.0.0.1 only, no DNS name: "localhost" fails host name verification.
	certPEM, keyPEM := ca.Issue(t, []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	caFile := tlstest.WriteFile(t, dir, "config/certs/ca.crt", ca.PEM)
	tlstest.WriteFile(t, dir, "config/certs/node.crt", certPEM)
	tlstest.WriteFile(t, dir, "config/certs/node.key", keyPEM)
	users := exec.Command(filepath.Join(home, "bin", "elasticsearch-users"), "useradd", secUser, "-p", secPass, "-r", "superuser")
	users.Env = append(os.Environ(), "ES_PATH_CONF="+filepath.Join(dir, "config"), "ES_JAVA_HOME="+java)
	if out, err := users.CombinedOutput(); err != nil {
		t.Fatalf("elasticsearch-users: %v: %s", err, out)
	}
	n := estest.StartNode(t, "secure", dir,
		"-Expack.security.enabled=true",
		"-Expack.security.http.ssl.enabled=true",
		"-Expack.security.http.ssl.certificate=certs/node.crt",
		"-Expack.security.http.ssl.key=certs/node.key",
		"-Expack.security.http.ssl.certificate_authorities=certs/ca.crt",
	)
	if !strings.HasPrefix(n.URL, "https://") {
		t.Fatalf("node url %s is not https", n.URL)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	db := estest.NewClient(t, n.URL)
	db.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	db.User, db.Password = secUser, secPass

	// API keys live in the .security index, whose mapping needs the
	// analysis-common module that this distribution lacks (creating one
	// answers 400 "Unknown filter type [pattern_capture]"); the API key
	// header is checked against a fake server in
	// TestFaultAPIKeyIsSentBase64Encoded instead.
	if st, body := db.Do("POST", "/_security/api_key", map[string]any{"name": "fleutan-test"}); st != 400 || !strings.Contains(string(body), "pattern_capture") {
		t.Logf("creating an API key now answers %d: %s; extend this test to use it", st, body)
	}

	wrongCA := tlstest.NewCA(t, "some other CA")
	wrongCAFile := tlstest.WriteFile(t, dir, "wrong-ca.crt", wrongCA.PEM)
	localhost := strings.Replace(n.URL, "127.0.0.1", "localhost", 1)

	cases := []struct {
		name    string
		host    string
		user    string
		pass    string
		apiKey  string
		ca      string
		mode    string
		wantErr string // empty: events are stored
	}{
		{name: "basic auth", host: n.URL, user: secUser, pass: secPass, ca: caFile, mode: "full"},
		{name: "wrong password", host: n.URL, user: secUser, pass: "wrong", ca: caFile, mode: "full", wantErr: "401 authentication failed"},
		{name: "wrong CA", host: n.URL, user: secUser, pass: secPass, ca: wrongCAFile, mode: "full", wantErr: "TLS error"},
		{name: "wrong CA, verification none", host: n.URL, user: secUser, pass: secPass, ca: wrongCAFile, mode: "none"},
		{name: "host name mismatch, full", host: localhost, user: secUser, pass: secPass, ca: caFile, mode: "full", wantErr: "TLS error"},
		{name: "host name mismatch, certificate", host: localhost, user: secUser, pass: secPass, ca: caFile, mode: "certificate"},
		{name: "wrong CA, certificate", host: localhost, user: secUser, pass: secPass, ca: wrongCAFile, mode: "certificate", wantErr: "TLS error"},
	}
	stored := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(tc.host)
			c.Username, c.Password, c.APIKey = tc.user, tc.pass, tc.apiKey
			c.SSL.CertificateAuthorities = []string{tc.ca}
			c.SSL.VerificationMode = tc.mode
			c.Namespace = "secure"
			cl := newTestClient(t, c)
			b := pipeline.NewBatch(flowEvents(i*10, 10, time.Now()))
			err := cl.Publish(context.Background(), b)
			var out strings.Builder
			terr := TestOutput(context.Background(), c, &out)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				if st := statuses(b); st[pipeline.Acked] != 10 {
					t.Fatalf("statuses %v, want 10 acked", st)
				}
				stored += 10
				if terr != nil {
					t.Fatalf("TestOutput: %v\n%s", terr, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Publish error %v, want one containing %q", err, tc.wantErr)
			}
			if terr == nil || !strings.Contains(terr.Error(), tc.wantErr) {
				t.Fatalf("TestOutput error %v, want one containing %q\n%s", terr, tc.wantErr, out.String())
			}
		})
	}
	if got := count(db, "metrics-fleutan.flows-secure"); got != stored {
		t.Fatalf("stored %d documents, want %d", got, stored)
	}
}
