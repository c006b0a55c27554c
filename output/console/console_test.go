package console

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func raw(t *testing.T, text string) config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) == 0 {
		return config.NewRaw(nil, "fleutanbeat.yml", "output.console")
	}
	return config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.console")
}

var settings = output.Settings{Beat: "fleutanbeat", Version: "0.1.0"}

func sample() []pipeline.Event {
	ts := time.Date(2026, 11, 27, 4, 5, 34, 123456789, time.UTC)
	return []pipeline.Event{
		{Timestamp: ts, Fields: pipeline.M{"event": pipeline.M{"dataset": "fleutan.cpu"}, "fleutan": pipeline.M{"cpu": pipeline.M{"core": 1, "pct": 12.5}}}, ID: "a"},
		{Timestamp: ts.Add(time.Second), Fields: pipeline.M{"message": "<b>&\n"}},
	}
}

func TestConsoleGolden(t *testing.T) {
	for _, c := range []struct{ yaml, golden string }{
		{"", "compact.ndjson"},
		{"pretty: true", "pretty.txt"},
	} {
		t.Run(c.golden, func(t *testing.T) {
			var buf bytes.Buffer
			g, err := NewWithWriter(raw(t, c.yaml), settings, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if g.BatchSize != 2048 || len(g.Clients) != 1 {
				t.Fatalf("group %+v", g)
			}
			if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch(sample())); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", c.golden)
			if *update {
				os.WriteFile(path, buf.Bytes(), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("got\n%s\nwant\n%s", buf.Bytes(), want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	cases := []struct {
		yaml    string
		want    Config
		wantErr string
	}{
		{"", Config{BatchSize: 2048}, ""},
		{"pretty: true\nbulk_max_size: 10", Config{Pretty: true, BatchSize: 10}, ""},
		{"bulk_max_size: 0", Config{}, "fleutanbeat.yml:1:16: output.console.bulk_max_size: 0 is out of range [1, 1048576]"},
	}
	for _, c := range cases {
		t.Run(c.yaml, func(t *testing.T) {
			var buf bytes.Buffer
			g, err := NewWithWriter(raw(t, c.yaml), settings, &buf)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("got %v, want %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.BatchSize != c.want.BatchSize || g.Clients[0].(*client).pretty != c.want.Pretty {
				t.Errorf("got batch %d pretty %v, want %+v", g.BatchSize, g.Clients[0].(*client).pretty, c.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteErrorRetriesBatch(t *testing.T) {
	g, err := NewWithWriter(raw(t, ""), settings, failingWriter{})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Clients[0].Publish(context.Background(), pipeline.NewBatch(sample()))
	if err == nil || err.Error() != "console output: write: broken pipe" {
		t.Errorf("got %v", err)
	}
}

func TestCloseTwiceThenPublishFails(t *testing.T) {
	var buf bytes.Buffer
	g, _ := NewWithWriter(raw(t, ""), settings, &buf)
	for range 2 {
		if err := g.Clients[0].Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch(sample())); !errors.Is(err, errClosed) {
		t.Errorf("got %v, want %v", err, errClosed)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q after Close", buf.String())
	}
}

// TestConcurrentPublishDoesNotInterleave writes to a plain bytes.Buffer:
// the race detector fails it unless the client serialises writes.
func TestConcurrentPublishDoesNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	g, _ := NewWithWriter(raw(t, "pretty: true"), settings, &buf)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch(sample())); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	one := func() string {
		var b bytes.Buffer
		g, _ := NewWithWriter(raw(t, "pretty: true"), settings, &b)
		g.Clients[0].Publish(context.Background(), pipeline.NewBatch(sample()))
		return b.String()
	}()
	if want := strings.Repeat(one, 200); buf.String() != want {
		t.Errorf("output of 200 batches is not 200 copies of one batch (%d bytes, want %d)", buf.Len(), len(want))
	}
}
