package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLineReader(t *testing.T) {
	in := "a\r\n\n  \nbb\n" + strings.Repeat("x", 20) + "\nccc"
	lr := NewLineReader(strings.NewReader(in), 10)
	var got []string
	for {
		line, err := lr.ReadLine()
		if err == io.EOF {
			break
		}
		if errors.Is(err, ErrMessageTooLarge) {
			got = append(got, "<too large>")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	want := []string{"a", "bb", "<too large>", "ccc"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestLineReaderHugeLine: a line far over the limit is skipped without
// being held in memory, and reading goes on.
func TestLineReaderHugeLine(t *testing.T) {
	huge := strings.Repeat("y", 20<<20)
	lr := NewLineReader(strings.NewReader(huge+"\nok\n"), 1024)
	if _, err := lr.ReadLine(); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("huge line: %v", err)
	}
	if line, err := lr.ReadLine(); err != nil || string(line) != "ok" {
		t.Fatalf("after huge line: %q %v", line, err)
	}
}

func TestEventReader(t *testing.T) {
	in := ": keep-alive\n\nevent: endpoint\ndata: /message?sessionId=1\n\nid: 7\ndata: {\"a\":\ndata: 1}\n\nevent: message\r\ndata:x\r\n\r\ndata: last"
	er := NewEventReader(strings.NewReader(in), 1024)
	want := []Event{
		{Name: "endpoint", Data: []byte("/message?sessionId=1")},
		{ID: "7", Data: []byte("{\"a\":\n1}")},
		{Name: "message", Data: []byte("x")},
		{Data: []byte("last")},
	}
	for i, w := range want {
		ev, err := er.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Name != w.Name || ev.ID != w.ID || string(ev.Data) != string(w.Data) {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	if _, err := er.Next(); err != io.EOF {
		t.Errorf("after the last event: %v", err)
	}
}

func TestEventReaderLimit(t *testing.T) {
	er := NewEventReader(strings.NewReader("data: "+strings.Repeat("z", 5000)+"\n\n"), 1024)
	if _, err := er.Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
}

func TestWriteEventRoundTrip(t *testing.T) {
	var b strings.Builder
	if err := writeEvent(&b, Event{Name: "message", Data: []byte("line1\nline2")}); err != nil {
		t.Fatal(err)
	}
	ev, err := NewEventReader(strings.NewReader(b.String()), 1024).Next()
	if err != nil || string(ev.Data) != "line1\nline2" || ev.Name != "message" {
		t.Errorf("round trip = %+v %v", ev, err)
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n"), 4)
	f.Add([]byte(strings.Repeat("x", 100)), 10)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max <= 0 || max > 1<<16 {
			max = 64
		}
		lr := NewLineReader(strings.NewReader(string(b)), max)
		for i := 0; i < len(b)+2; i++ {
			line, err := lr.ReadLine()
			if err == io.EOF {
				return
			}
			if err == nil && (len(line) > max || strings.ContainsRune(string(line), '\n')) {
				t.Fatalf("line of %d bytes (max %d) or with a newline", len(line), max)
			}
		}
	})
}

func FuzzEventReader(f *testing.F) {
	f.Add([]byte("event: message\ndata: {}\n\n"))
	f.Add([]byte(": c\n\ndata: a\ndata: b\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		er := NewEventReader(strings.NewReader(string(b)), 256)
		for i := 0; i < len(b)+2; i++ {
			ev, err := er.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > 256 {
				t.Fatalf("event of %d bytes over the limit", len(ev.Data))
			}
		}
	})
}

func TestTopLevelID(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"x":"`, "7", true},
		{`{"jsonrpc":"2.0","id":"a\"b","result":`, `"a\"b"`, true},
		{`{"result":{"id":99,"content":"...`, "", false},
		{`{"jsonrpc":"2.0","result":{"id":99},"id":-3}`, "-3", true},
		{`{"method":"x","params":{"text":"\"id\":5"},"id":12`, "12", true},
		{`{"id":`, "", false},
		{`not json`, "", false},
	}
	for _, tc := range cases {
		id, ok := topLevelID([]byte(tc.in))
		if ok != tc.ok || string(id) != tc.want {
			t.Errorf("topLevelID(%s) = %s, %v; want %s, %v", tc.in, id, ok, tc.want, tc.ok)
		}
	}
}

// TestOversizedAnswerIsAnsweredWithAnError: an upstream answer over the
// limit arrives as an error response with the request's id, so nothing
// waits for it forever.
func TestOversizedAnswerIsAnsweredWithAnError(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":"call-9","result":{"content":[{"type":"text","text":"` + strings.Repeat("z", 5000) + `"}]}}` + "\n"
	c := NewStreamConn(strings.NewReader(big), io.Discard, StreamOptions{MaxMessageBytes: 1024, AnswerOversized: true})
	m, err := c.Recv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(m.ID) != `"call-9"` || m.Error == nil || !strings.Contains(m.Error.Message, "over the 1024-byte message limit") {
		t.Errorf("got %s", m.Raw)
	}
}

func FuzzTopLevelID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"result":{}}`))
	f.Add([]byte(`{"a":{"id":1},"id":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := topLevelID(b)
		if ok && !json.Valid(id) {
			t.Fatalf("invalid id %q", id)
		}
	})
}
