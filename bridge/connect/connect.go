// Package connect is the client half of bridge: `bridge connect <server>`.
// It relays an agent's MCP messages, over stdio or a loopback HTTP
// listener, to the gateway's Streamable HTTP endpoint for that server,
// adding the user's bearer token, and hides gateway restarts from the agent.
package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// Options configures a relay to the gateway.
type Options struct {
	// Gateway is the gateway's base URL; Server the upstream's name.
	Gateway string
	Server  string
	// Token returns the bearer token for each request. Its error, if it
	// is a bridge.PublicError, is shown to the agent as is.
	Token func(ctx context.Context) (string, error)
	// Invalidate is told that the gateway rejected a token (HTTP 401).
	Invalidate func(ctx context.Context, token string)
	HTTPClient *http.Client
	Logger     *slog.Logger
	// MaxMessageBytes bounds one message in either direction.
	MaxMessageBytes int
	// OnAgent, if set, receives the link to the agent once the stdio relay
	// starts, so that a login started by Token can tell the agent.
	OnAgent func(AgentLink)
}

// Endpoint returns the gateway's MCP URL for the server.
func (o *Options) Endpoint() (string, error) {
	u, err := url.Parse(strings.TrimRight(o.Gateway, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("invalid gateway URL %q: want https://host[:port]", o.Gateway)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("refusing to send tokens to %s over plain http: use https", u.Host)
	}
	return u.String() + "/mcp/" + url.PathEscape(o.Server), nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Dial opens a connection to the gateway for one agent session.
func Dial(opts Options) (*bridge.Client, error) {
	endpoint, err := opts.Endpoint()
	if err != nil {
		return nil, err
	}
	var mu tokenMemo
	return bridge.NewClient(bridge.ClientOptions{
		URL:        endpoint,
		HTTPClient: opts.HTTPClient,
		Header: func(ctx context.Context, h http.Header) error {
			tok, err := opts.Token(ctx)
			if err != nil {
				var pe bridge.PublicError
				if errors.As(err, &pe) {
					return err
				}
				return bridge.Errorf(bridge.CodeUnavailable, "bridge: "+err.Error(), nil)
			}
			mu.set(tok)
			h.Set("Authorization", "Bearer "+tok)
			return nil
		},
		OnUnauthorized: func(ctx context.Context) error {
			if opts.Invalidate != nil {
				opts.Invalidate(ctx, mu.get())
			}
			return nil
		},
		Reinitialize:    true,
		Name:            "the bridge gateway",
		MaxMessageBytes: opts.MaxMessageBytes,
		Logger:          opts.Logger,
	})
}

// RunStdio relays between an agent on in/out and the gateway until in
// closes. out carries nothing but JSON-RPC; diagnostics go to the logger.
func RunStdio(ctx context.Context, opts Options, in io.Reader, out io.Writer) error {
	gw, err := Dial(opts)
	if err != nil {
		return err
	}
	defer gw.Close()
	var agent *bridge.StreamConn
	agent = bridge.NewStreamConn(in, out, bridge.StreamOptions{
		MaxMessageBytes: opts.MaxMessageBytes,
		OnInvalid: func(err error) {
			// Answer with the request's id when it can be seen, else null.
			code := bridge.CodeParseError
			var id json.RawMessage
			var tl *bridge.TooLargeError
			var pe *bridge.ParseError
			switch {
			case errors.As(err, &tl):
				code = bridge.CodeRefused
				id, _ = tl.ID()
			case errors.As(err, &pe):
				code, id = pe.Code, pe.ID
			}
			_ = agent.WriteRaw(bridge.NewError(id, code, "bridge: "+err.Error()).Raw)
		},
	})
	defer agent.Close()
	link := &stdioLink{agent: agent}
	if opts.OnAgent != nil {
		opts.OnAgent(link)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			m, err := gw.Recv(ctx)
			if err != nil {
				return
			}
			if err := agent.Send(ctx, m); err != nil {
				cancel()
				return
			}
		}
	}()
	for {
		m, err := agent.Recv(ctx)
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if m.Kind == bridge.KindRequest && m.Method == "initialize" {
			link.noteInitialize(m)
		}
		if link.ours(m) {
			continue // the agent's answer to our own elicitation
		}
		if err := gw.Send(ctx, m); err != nil {
			return err
		}
	}
}

// tokenMemo remembers the last token sent, for Invalidate.
type tokenMemo struct {
	mu  sync.Mutex
	tok string
}

func (t *tokenMemo) set(tok string) {
	t.mu.Lock()
	t.tok = tok
	t.mu.Unlock()
}

func (t *tokenMemo) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}
