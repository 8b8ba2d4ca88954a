package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TestEndToEndEveryFeature drives the real `bridge connect` binary with an
// MCP client on its stdio, through the gateway, to the demo upstream running
// as a stdio subprocess, and exercises every MCP feature the relay carries.
func TestEndToEndEveryFeature(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	init := a.initialize("2025-11-25")
	if !bytes.Contains(init.Result, []byte(`"bridge-demo"`)) {
		t.Fatalf("initialize result does not name the demo server: %s", init.Result)
	}

	t.Run("tools", func(t *testing.T) {
		r := a.call("tools/list", nil)
		for _, name := range []string{"echo", "get_customers", "delete_records", "slow_count", "ask_model", "confirm", "list_roots"} {
			if !bytes.Contains(r.Result, []byte(`"`+name+`"`)) {
				t.Errorf("tools/list lacks %s", name)
			}
		}
		if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "hello through bridge"}))); got != "hello through bridge" {
			t.Errorf("echo = %q", got)
		}
	})

	t.Run("progress", func(t *testing.T) {
		p := toolCall("slow_count", map[string]any{"n": 3})
		p["_meta"] = map[string]any{"progressToken": "tok-1"}
		if got := toolText(t, a.call("tools/call", p)); got != "counted to 3" {
			t.Errorf("slow_count = %q", got)
		}
		var last struct {
			Params struct {
				ProgressToken string  `json:"progressToken"`
				Progress      float64 `json:"progress"`
			} `json:"params"`
		}
		// The upstream may write its last progress after its result.
		ns := a.notifications("notifications/progress")
		for deadline := time.Now().Add(10 * time.Second); len(ns) < 3 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			ns = a.notifications("notifications/progress")
		}
		if len(ns) != 3 {
			t.Fatalf("got %d progress notifications, want 3", len(ns))
		}
		if err := json.Unmarshal(ns[2], &last); err != nil || last.Params.ProgressToken != "tok-1" || last.Params.Progress != 3 {
			t.Errorf("last progress = %s", ns[2])
		}
	})

	t.Run("logging", func(t *testing.T) {
		if r := a.call("logging/setLevel", map[string]any{"level": "debug"}); r.Error != nil {
			t.Fatalf("logging/setLevel: %s", r.Error.Message)
		}
		toolText(t, a.call("tools/call", toolCall("log", map[string]any{"message": "a log line", "level": "warning"})))
		n := a.waitNotification("notifications/message")
		if !bytes.Contains(n, []byte("a log line")) {
			t.Errorf("log notification = %s", n)
		}
	})

	t.Run("sampling", func(t *testing.T) {
		if got := toolText(t, a.call("tools/call", toolCall("ask_model", map[string]any{"question": "meaning of life?"}))); got != "the model said: forty-two" {
			t.Errorf("ask_model = %q", got)
		}
	})

	t.Run("elicitation", func(t *testing.T) {
		got := toolText(t, a.call("tools/call", toolCall("confirm", map[string]any{"question": "Proceed?"})))
		if !strings.Contains(got, "accept") {
			t.Errorf("confirm = %q", got)
		}
	})

	t.Run("roots", func(t *testing.T) {
		if got := toolText(t, a.call("tools/call", toolCall("list_roots", nil))); got != "roots: file:///work/project" {
			t.Errorf("list_roots = %q", got)
		}
	})

	t.Run("resources", func(t *testing.T) {
		r := a.call("resources/list", nil)
		if !bytes.Contains(r.Result, []byte("demo://readme")) {
			t.Errorf("resources/list = %s", r.Result)
		}
		r = a.call("resources/templates/list", nil)
		if !bytes.Contains(r.Result, []byte("demo://customers/{id}")) {
			t.Errorf("resources/templates/list = %s", r.Result)
		}
		r = a.call("resources/read", map[string]any{"uri": "demo://customers/C-1002"})
		if !bytes.Contains(r.Result, []byte("Grace Hopper")) {
			t.Errorf("resources/read = %s", r.Result)
		}
		if r := a.call("resources/subscribe", map[string]any{"uri": "demo://readme"}); r.Error != nil {
			t.Errorf("resources/subscribe: %s", r.Error.Message)
		}
		if r := a.call("resources/unsubscribe", map[string]any{"uri": "demo://readme"}); r.Error != nil {
			t.Errorf("resources/unsubscribe: %s", r.Error.Message)
		}
	})

	t.Run("prompts and completion", func(t *testing.T) {
		r := a.call("prompts/list", nil)
		if !bytes.Contains(r.Result, []byte(`"summarize"`)) {
			t.Errorf("prompts/list = %s", r.Result)
		}
		r = a.call("prompts/get", map[string]any{"name": "summarize", "arguments": map[string]any{"customer": "C-1001"}})
		if !bytes.Contains(r.Result, []byte("customer C-1001")) {
			t.Errorf("prompts/get = %s", r.Result)
		}
		r = a.call("completion/complete", map[string]any{
			"ref":      map[string]any{"type": "ref/prompt", "name": "summarize"},
			"argument": map[string]any{"name": "customer", "value": "C-100"},
		})
		if !bytes.Contains(r.Result, []byte("C-1003")) {
			t.Errorf("completion/complete = %s", r.Result)
		}
	})

	t.Run("ping and unknown methods", func(t *testing.T) {
		if r := a.call("ping", nil); r.Error != nil {
			t.Errorf("ping: %s", r.Error.Message)
		}
		// A method bridge has never heard of still reaches the upstream,
		// whose own error comes back.
		r := a.call("vendor/frobnicate", map[string]any{"x": 1})
		if r.Error == nil || r.Error.Code != bridge.CodeMethodNotFound {
			t.Errorf("vendor/frobnicate = %+v", r)
		}
		if !w.seen.has("client→upstream request vendor/frobnicate") {
			t.Errorf("the unknown method was not relayed upstream")
		}
	})

	t.Run("cancellation", func(t *testing.T) {
		p := toolCall("slow_count", map[string]any{"n": 1000})
		p["_meta"] = map[string]any{"progressToken": "cancel-me"}
		ch, id := a.start("tools/call", p)
		a.waitNotification("notifications/progress")
		a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": id, "reason": "user pressed stop"}})
		deadline := time.Now().Add(20 * time.Second)
		for !w.seen.has(`notifications/cancelled {"reason":"user pressed stop","requestId":` + itoa(id)) {
			if time.Now().After(deadline) {
				t.Fatal("the cancellation did not reach the upstream")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The session stays usable and the cancelled call gets no answer.
		if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "still here"}))); got != "still here" {
			t.Errorf("echo after cancel = %q", got)
		}
		select {
		case line := <-ch:
			t.Errorf("a cancelled request was answered: %s", line)
		default:
		}
	})

	if strings.Contains(w.logs.String(), "s3cret-upstream-value") || strings.Contains(a.stderr.String(), "s3cret-upstream-value") {
		t.Error("an upstream secret reached a log")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestEndToEndStatelessProtocol sends 2026-07-28 requests, which carry their
// version in _meta and have no initialize or session.
func TestEndToEndStatelessProtocol(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "e2e-agent", "version": "1"},
	}
	r := a.call("server/discover", map[string]any{"_meta": meta})
	if r.Error != nil || !bytes.Contains(r.Result, []byte("bridge-demo")) {
		t.Fatalf("server/discover = %+v %s", r.Error, r.Result)
	}
	p := toolCall("echo", map[string]any{"message": "stateless"})
	p["_meta"] = meta
	if got := toolText(t, a.call("tools/call", p)); got != "stateless" {
		t.Errorf("echo = %q", got)
	}
}

// TestEndToEndOlderProtocols runs a session at each stateful version.
func TestEndToEndOlderProtocols(t *testing.T) {
	w := newWorld(t)
	for _, v := range []string{"2025-03-26", "2025-06-18", "2025-11-25"} {
		t.Run(v, func(t *testing.T) {
			a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
			init := a.initialize(v)
			if !bytes.Contains(init.Result, []byte(`"protocolVersion":"`+v+`"`)) {
				t.Errorf("negotiated %s", init.Result)
			}
			if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": v}))); got != v {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// TestEndToEndGatewayRestart restarts the gateway in the middle of a session;
// bridge connect re-initializes transparently and the agent never notices.
func TestEndToEndGatewayRestart(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "before"}))); got != "before" {
		t.Fatalf("echo = %q", got)
	}
	w.stop()
	// While the gateway is down, requests get a clear error, not silence.
	r := a.call("tools/call", toolCall("echo", map[string]any{"message": "down"}))
	if r.Error == nil || !strings.Contains(r.Error.Message, "cannot reach the bridge gateway") {
		t.Fatalf("with the gateway down: %+v", r)
	}
	w.start(w.gwAddr)
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "after"}))); got != "after" {
		t.Fatalf("echo after restart = %q", got)
	}
	if !strings.Contains(a.stderr.String(), "re-initializing") {
		t.Errorf("bridge connect did not report the re-initialization")
	}
}

// TestEndToEndTokenRefresh starts connect with a stored login whose access
// token is about to expire: connect refreshes it (rotating the refresh
// token) before calling the gateway.
func TestEndToEndTokenRefresh(t *testing.T) {
	w := newWorld(t)
	home := t.TempDir()
	tok := w.login(home)
	tok.Expiry = time.Now().Add(30 * time.Second) // inside the refresh window
	w.storeToken(home, tok)
	a := w.startAgent("BRIDGE_HOME=" + home)
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "fresh"}))); got != "fresh" {
		t.Fatalf("echo = %q", got)
	}
	if n := w.okta.Stats().RefreshGrants; n != 1 {
		t.Errorf("refresh grants = %d, want 1", n)
	}
	saved, err := (&auth.FileStore{Dir: auth.TokensDir(home)}).Load(w.gwURL)
	if err != nil {
		t.Fatal(err)
	}
	if saved.RefreshToken == tok.RefreshToken {
		t.Error("the rotated refresh token was not saved")
	}
}

// login runs a real device flow against the fake Okta, approved by the test.
func (w *world) login(home string) *auth.Token {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bc, err := auth.FetchBridgeConfiguration(ctx, http.DefaultClient, w.gwURL)
	if err != nil {
		w.t.Fatal(err)
	}
	var stderr syncBuffer
	l := &auth.DeviceLogin{Config: *bc, Stderr: &stderr, Sleep: func(ctx context.Context, _ time.Duration) error {
		for _, code := range w.okta.PendingUserCodes() {
			_ = w.okta.Approve(code, "alice")
		}
		return ctx.Err()
	}}
	tok, err := l.Run(ctx)
	if err != nil {
		w.t.Fatalf("device login: %v\n%s", err, stderr.String())
	}
	return tok
}

// TestEndToEndLoginDenied: without a login, connect starts one; when the
// user denies it in the browser the waiting request is answered with an
// error that says so, and nothing reaches the gateway's pipeline.
func TestEndToEndLoginDenied(t *testing.T) {
	w := newWorld(t)
	home := t.TempDir()
	if err := auth.SaveProfile(home, &auth.Profile{Gateway: w.gwURL, Issuer: w.okta.Issuer(), ClientID: "bridge-test-cli", InsecureStorage: true}); err != nil {
		t.Fatal(err)
	}
	a := w.startAgent("BRIDGE_HOME=" + home)
	ch, id := a.start("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"}})
	for deadline := time.Now().Add(20 * time.Second); len(w.okta.PendingUserCodes()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no login started")
		}
	}
	if err := w.okta.Deny(w.okta.PendingUserCodes()[0]); err != nil {
		t.Fatal(err)
	}
	r := a.wait(ch, id)
	if r.Error == nil || !strings.Contains(r.Error.Message, "denied") {
		t.Fatalf("initialize after a denied login = %+v", r)
	}
	if w.seen.has("initialize") {
		t.Error("a request without a login reached the pipeline")
	}
}

// TestSessionsAreBoundToTheirUser: another user presenting a session id gets
// 404, exactly as for a session that does not exist.
func TestSessionsAreBoundToTheirUser(t *testing.T) {
	w := newWorld(t)
	init := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	resp := w.post("/mcp/demo", w.token("alice"), "", init)
	sid := resp.Header.Get(bridge.HeaderSessionID)
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: HTTP %d, session %q", resp.StatusCode, sid)
	}
	call := []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"mine"}}}`)
	if r := w.post("/mcp/demo", w.token("bob"), sid, call); r.StatusCode != http.StatusNotFound {
		t.Errorf("bob using alice's session: HTTP %d, want 404", r.StatusCode)
	}
	if r := w.post("/mcp/demo", w.token("alice"), "no-such-session", call); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: HTTP %d, want 404", r.StatusCode)
	}
	r := w.post("/mcp/demo", w.token("alice"), sid, call)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("mine")) {
		t.Errorf("alice using her session: HTTP %d %s", r.StatusCode, body)
	}
	if w.seen.has(`"message":"mine"`) && strings.Count(strings.Join(w.seen.msgs, "\n"), `"message":"mine"`) != 1 {
		t.Error("bob's request reached the pipeline")
	}
}

// TestGatewayRejectsBadInput: each bad request gets a clear error, the
// gateway stays up, and nothing is forwarded.
func TestGatewayRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	good := w.token("alice")
	mint := func(o fakeokta.MintOptions) string {
		tok, err := w.okta.Mint("alice", o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	init := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	big := append([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"`), bytes.Repeat([]byte("a"), 20<<20)...)
	big = append(big, []byte(`"}}}`)...)
	cases := []struct {
		name   string
		path   string
		token  string
		body   []byte
		status int
		want   string
	}{
		{"malformed JSON", "/mcp/demo", good, []byte(`{"jsonrpc":"2.0","id":1,`), 400, "malformed JSON"},
		{"not an object", "/mcp/demo", good, []byte(`"hello"`), 400, "not a JSON object"},
		{"wrong jsonrpc version", "/mcp/demo", good, []byte(`{"jsonrpc":"1.0","id":1,"method":"ping"}`), 400, `must be \"2.0\"`},
		{"20 MB message", "/mcp/demo", good, big, 413, "byte limit"},
		{"unknown server", "/mcp/nope", good, init, 404, `unknown server \"nope\"`},
		{"no token", "/mcp/demo", "", init, 401, "authentication required"},
		{"garbage token", "/mcp/demo", "not-a-jwt", init, 401, "invalid access token"},
		{"expired token", "/mcp/demo", mint(fakeokta.MintOptions{TTL: -time.Hour}), init, 401, "expired"},
		{"wrong audience", "/mcp/demo", mint(fakeokta.MintOptions{Audience: "api://other"}), init, 401, "audience"},
		{"wrong issuer", "/mcp/demo", mint(fakeokta.MintOptions{Issuer: "https://evil.example.com/oauth2/default"}), init, 401, "issuer"},
		{"alg none", "/mcp/demo", mint(fakeokta.MintOptions{Alg: "none"}), init, 401, "invalid access token"},
		{"HS256 forged with the public key", "/mcp/demo", mint(fakeokta.MintOptions{Alg: "HS256"}), init, 401, "invalid access token"},
		{"unknown signing key", "/mcp/demo", mint(fakeokta.MintOptions{SignWithUnknownKey: true}), init, 401, "invalid access token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := w.post(tc.path, tc.token, "", tc.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(strings.ToLower(string(body)), strings.ToLower(tc.want)) {
				t.Errorf("body %q does not say %q", body, tc.want)
			}
			if tc.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
				t.Errorf("401 without a resource_metadata challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.token != "" && strings.Contains(w.logs.String(), tc.token) {
				t.Errorf("the token reached the gateway's log")
			}
		})
	}
	if w.seen.has("initialize") || w.seen.has("tools/call") {
		t.Error("a rejected request reached the pipeline")
	}
	// The gateway is still up.
	if resp := w.post("/mcp/demo", good, "", init); resp.StatusCode != http.StatusOK {
		t.Errorf("after bad input: HTTP %d", resp.StatusCode)
	}
}

// TestGatewayIdentityProviderDown: when the JWKS cannot be fetched, calls are
// refused with 503 and nothing is forwarded.
func TestGatewayIdentityProviderDown(t *testing.T) {
	w := newWorld(t)
	tok := w.token("alice")
	w.oktaSrv.Close()
	init := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	resp := w.post("/mcp/demo", tok, "", init)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("identity provider")) {
		t.Errorf("HTTP %d %s", resp.StatusCode, body)
	}
	if w.seen.has("initialize") {
		t.Error("a request was forwarded without verification")
	}
}

// TestDiscoveryDocuments: the gateway tells clients how to log in.
func TestDiscoveryDocuments(t *testing.T) {
	w := newWorld(t)
	bc, err := auth.FetchBridgeConfiguration(context.Background(), http.DefaultClient, w.gwURL)
	if err != nil {
		t.Fatal(err)
	}
	if bc.Issuer != w.okta.Issuer() || bc.ClientID != "bridge-test-cli" || bc.Audience != "api://bridge-test" {
		t.Errorf("bridge-configuration = %+v", bc)
	}
	resp, err := http.Get(w.gwURL + "/.well-known/oauth-protected-resource/mcp/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil {
		t.Fatal(err)
	}
	if prm.Resource != w.gwURL+"/mcp/demo" || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != w.okta.Issuer() {
		t.Errorf("protected resource metadata = %+v", prm)
	}
}

// TestUpstreamStderrIsRedacted: a stdio upstream that prints its own
// credentials to stderr does not put them in the gateway's log.
func TestUpstreamStderrIsRedacted(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	// The demo logs each echo's message; echo the upstream's secret back.
	toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "s3cret-upstream-value"})))
	waitLog(t, w, "echo called")
	if strings.Contains(w.logs.String(), "s3cret-upstream-value") {
		t.Error("the upstream's secret reached the gateway log through its stderr")
	}
}
