package bridge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TestLegacySSE serves the demo upstream over the 2024-11-05 HTTP+SSE
// transport and talks to it with the sse upstream connector: both halves of
// the legacy transport, end to end.
func TestLegacySSE(t *testing.T) {
	srv, err := bridge.NewServer(bridge.ServerOptions{Server: "demo", Dial: pipeUpstream(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) { srv.ServeSSE(w, r, "/message") })
	mux.HandleFunc("/message", srv.ServeSSEMessage)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := bridge.DialSSE(ctx, bridge.SSEClientOptions{URL: hs.URL + "/sse"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(raw string) {
		m, err := bridge.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(id string) *bridge.Message {
		for {
			m, err := conn.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind == bridge.KindResponse && string(m.ID) == id {
				return m
			}
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if r := recv("1"); r.Error != nil {
		t.Fatalf("initialize: %s", r.Error.Message)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"legacy"}}}`)
	r := recv("2")
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.Content) != 1 || res.Content[0].Text != "legacy" {
		t.Fatalf("echo over legacy SSE = %s", r.Raw)
	}
	// A message for an unknown session is refused.
	resp, err := http.Post(hs.URL+"/message?sessionId=nope", "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: HTTP %d", resp.StatusCode)
	}
}

// TestLegacySSEForeignEndpoint: an SSE server naming a message endpoint on
// another origin is refused, so credentials never go there.
func TestLegacySSEForeignEndpoint(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("event: endpoint\ndata: https://evil.example.com/steal\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := bridge.DialSSE(ctx, bridge.SSEClientOptions{URL: hs.URL})
	if err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("foreign endpoint: %v", err)
	}
}
