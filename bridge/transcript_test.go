package bridge_test

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

var update = flag.Bool("update", false, "rewrite golden transcripts")

// TestTranscripts replays the JSON-RPC transcripts in testdata/transcripts
// through the relay to the demo upstream. Each file has a "send" section,
// one message (or batch) per line, posted in order as a Streamable HTTP
// client would, and a "want" section with every message the client got
// back, in order. Run with -update to rewrite the "want" sections.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sections := splitSections(string(raw))
			_, hs := newRelay(t, nil)
			got := replay(t, hs.URL, sections["send"])
			if *update {
				out := "-- send --\n" + sections["send"] + "-- want --\n" + got
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != sections["want"] {
				t.Errorf("transcript differs (run with -update to accept):\n--- got\n%s--- want\n%s", got, sections["want"])
			}
		})
	}
}

// splitSections parses "-- name --" delimited sections.
func splitSections(s string) map[string]string {
	out := map[string]string{}
	name := ""
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(strings.TrimSpace(line), " --") {
			name = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "-- "), " --")
			continue
		}
		if name != "" && line != "" {
			out[name] += line
		}
	}
	return out
}

// replay posts each line and returns every message received, one per line.
func replay(t *testing.T, url, send string) string {
	t.Helper()
	var got strings.Builder
	session := ""
	for _, line := range strings.Split(strings.TrimSpace(send), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set(bridge.HeaderSessionID, session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if sid := resp.Header.Get(bridge.HeaderSessionID); sid != "" {
			session = sid
		}
		if resp.StatusCode == http.StatusAccepted {
			resp.Body.Close()
			continue
		}
		var answer []string
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			er := bridge.NewEventReader(resp.Body, bridge.DefaultMaxMessageBytes)
			for {
				ev, err := er.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				answer = append(answer, string(compact(t, ev.Data)))
			}
		} else {
			body, _ := io.ReadAll(resp.Body)
			answer = append(answer, string(compact(t, body)))
		}
		resp.Body.Close()
		if strings.HasPrefix(line, "[") {
			sort.Strings(answer) // a batch's answers come in any order
		}
		for _, a := range answer {
			got.WriteString(a + "\n")
		}
	}
	return got.String()
}

func compact(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := jsonCompact(&buf, b); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return buf.Bytes()
}
