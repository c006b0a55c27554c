package kibana

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
)

// ImportResult is Kibana's answer to _import. Kibana answers 200 even when
// objects fail; the failures are in Errors.
type ImportResult struct {
	Success      bool          `json:"success"`
	SuccessCount int           `json:"successCount"`
	Errors       []ObjectError `json:"errors"`
}

// ObjectError is one object Kibana did not import.
type ObjectError struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
	Meta  struct {
		Title string `json:"title"`
	} `json:"meta"`
	Error struct {
		Type       string `json:"type"`
		Message    string `json:"message"`
		References []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"references"`
	} `json:"error"`
}

func (e ObjectError) String() string {
	title := e.Title
	if title == "" {
		title = e.Meta.Title
	}
	s := fmt.Sprintf("%s %s", e.Type, e.ID)
	if title != "" {
		s += fmt.Sprintf(" (%q)", title)
	}
	s += ": " + e.Error.Type
	if e.Error.Message != "" {
		s += ": " + e.Error.Message
	}
	for _, r := range e.Error.References {
		s += fmt.Sprintf(" [missing %s %s]", r.Type, r.ID)
	}
	return s
}

// maxReply bounds how much of Kibana's answer is read.
const maxReply = 8 << 20

// Import posts Objects() to Kibana's saved objects import API with
// overwrite=true and writes a report to w: the success count and every
// per-object error. It fails if the request fails, Kibana answers other
// than 200, or any object was not imported.
func Import(ctx context.Context, cfg Config, w io.Writer) error {
	res, err := ImportObjects(ctx, cfg, Objects())
	if err != nil {
		return err
	}
	n := bytes.Count(objects, []byte("\n"))
	fmt.Fprintf(w, "Kibana imported %d of %d saved objects\n", res.SuccessCount, n)
	for _, e := range res.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if len(res.Errors) > 0 || !res.Success {
		return fmt.Errorf("kibana: import: %d of %d saved objects failed (they need Kibana %s or later)", max(len(res.Errors), n-res.SuccessCount), n, MinVersion)
	}
	return nil
}

// ImportObjects posts ndjson to <host>[/s/<space>]/api/saved_objects/_import
// and returns Kibana's decoded answer.
func ImportObjects(ctx context.Context, cfg Config, ndjson []byte) (ImportResult, error) {
	var res ImportResult
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("kibana: config: %w", err)
	}
	base, _ := cfg.baseURL()
	client, err := httpClient(cfg)
	if err != nil {
		return res, err
	}
	body, ctype, err := multipartBody(ndjson)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	url := base.String() + "/api/saved_objects/_import?overwrite=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, fmt.Errorf("kibana: import: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	// Kibana refuses state-changing requests without kbn-xsrf (CSRF guard).
	req.Header.Set("kbn-xsrf", "fleutanbeat")
	switch {
	case cfg.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+apiKey(cfg.APIKey))
	case cfg.Username != "":
		req.SetBasicAuth(cfg.Username, cfg.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return res, fmt.Errorf("kibana: import: %w", err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return res, fmt.Errorf("kibana: import: reading reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("kibana: import: %s: %s", resp.Status, snippet(reply))
	}
	if err := json.Unmarshal(reply, &res); err != nil {
		return res, fmt.Errorf("kibana: import: decoding reply: %w: %s", err, snippet(reply))
	}
	return res, nil
}

// apiKey accepts "id:key" and encodes it; an already encoded key passes.
func apiKey(k string) string {
	if strings.Contains(k, ":") {
		return base64.StdEncoding.EncodeToString([]byte(k))
	}
	return k
}

func multipartBody(ndjson []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	// Kibana takes the objects from the form field "file" and requires the
	// .ndjson extension.
	h.Set("Content-Disposition", `form-data; name="file"; filename="fleutanbeat.ndjson"`)
	h.Set("Content-Type", "application/ndjson")
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", fmt.Errorf("kibana: import: %w", err)
	}
	part.Write(ndjson)
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("kibana: import: %w", err)
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func httpClient(cfg Config) (*http.Client, error) {
	tc, err := cfg.SSL.Build()
	if err != nil {
		return nil, fmt.Errorf("kibana: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	return s
}
