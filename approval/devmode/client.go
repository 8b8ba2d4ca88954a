package devmode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// DemoClient is `bridge serve --dev --with-client`: a connected client that
// logs in through the dev identity provider, runs `bridge connect demo` as
// an agent would, and prints what a few calls show — an allowed call, a
// masked response, a denied call — so one command shows the product working.
type DemoClient struct {
	Self    string // this binary
	Gateway string // the dev gateway's URL
	Out     io.Writer
	// Home is the client's BRIDGE_HOME; a temporary directory by default.
	Home string
}

// Run logs in, connects and makes the calls.
func (d *DemoClient) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	home := d.Home
	if home == "" {
		var err error
		if home, err = os.MkdirTemp("", "bridge-dev-client-"); err != nil {
			return err
		}
		defer os.RemoveAll(home)
	}
	bc, err := auth.FetchBridgeConfiguration(ctx, http.DefaultClient, d.Gateway)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.Out, "client: logging in as the dev user (device flow; it approves itself)\n")
	tok, err := (&auth.DeviceLogin{Config: *bc, Stderr: io.Discard}).Run(ctx)
	if err != nil {
		return fmt.Errorf("dev login: %w", err)
	}
	if err := (&auth.FileStore{Dir: auth.TokensDir(home)}).Save(d.Gateway, tok); err != nil {
		return err
	}
	if err := auth.SaveProfile(home, &auth.Profile{Gateway: d.Gateway, Issuer: bc.Issuer, ClientID: bc.ClientID, InsecureStorage: true}); err != nil {
		return err
	}

	cmd := exec.CommandContext(ctx, d.Self, "connect", "demo", "--no-browser", "--log-level", "warn")
	cmd.Env = append(os.Environ(), auth.HomeEnv+"="+home)
	cmd.Stderr = d.Out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	conn := bridge.NewStreamConn(stdout, stdin, bridge.StreamOptions{})
	n := 0
	call := func(method string, params any) (*bridge.Message, error) {
		n++
		req, err := bridge.NewRequest(json.RawMessage(fmt.Sprint(n)), method, params)
		if err != nil {
			return nil, err
		}
		if err := conn.Send(ctx, req); err != nil {
			return nil, err
		}
		for {
			m, err := conn.Recv(ctx)
			if err != nil {
				return nil, err
			}
			if m.Kind == bridge.KindResponse && string(m.ID) == fmt.Sprint(n) {
				return m, nil
			}
		}
	}
	fmt.Fprintf(d.Out, "client: running `%s connect demo`, as an agent's MCP config would\n", d.Self)
	if _, err := call("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "bridge-dev-client", "version": "1"}}); err != nil {
		return err
	}
	note, _ := bridge.NewNotification("notifications/initialized", nil)
	_ = conn.Send(ctx, note)

	tools, err := call("tools/list", nil)
	if err != nil {
		return err
	}
	var tl struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	_ = json.Unmarshal(tools.Result, &tl)
	var names []string
	for _, t := range tl.Tools {
		names = append(names, t.Name)
	}
	fmt.Fprintf(d.Out, "client: tools/list → %s\n", strings.Join(names, ", "))
	for _, c := range []struct {
		what string
		args map[string]any
		tool string
	}{
		{"allowed", map[string]any{"message": "hello through bridge"}, "echo"},
		{"allowed, response masked", map[string]any{"limit": 1}, "get_customers"},
		{"denied by policy", map[string]any{"table": "customers"}, "delete_records"},
	} {
		r, err := call("tools/call", map[string]any{"name": c.tool, "arguments": c.args})
		if err != nil {
			return err
		}
		fmt.Fprintf(d.Out, "client: %s (%s) → %s\n", c.tool, c.what, resultText(r))
	}
	fmt.Fprintf(d.Out, "client: done. A delete_records call with a `where` filter is held for a reviewer (see `bridge approvals --help`).\n\n")
	return nil
}

// resultText is the text content of a tools/call result, on one line.
func resultText(m *bridge.Message) string {
	if m.Error != nil {
		return "error: " + m.Error.Message
	}
	var r struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	_ = json.Unmarshal(m.Result, &r)
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	s := strings.ReplaceAll(strings.TrimSpace(b.String()), "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	if r.IsError {
		s = "[error] " + s
	}
	return s
}
