package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/bridge/connect"
)

// ConnectOptions are the flags and dependencies of `bridge connect`.
type ConnectOptions struct {
	F         *Factory
	Server    string
	Gateway   string
	Listen    string
	LogLevel  string
	NoBrowser bool
}

// NewCmdConnect builds `bridge connect <server>`.
func NewCmdConnect(f *Factory, runF func(context.Context, *ConnectOptions) error) *cobra.Command {
	opts := &ConnectOptions{F: f}
	cmd := &cobra.Command{
		Use:   "connect <server>",
		Short: "Relay an agent's MCP session to the gateway (what an agent's MCP config runs)",
		Long: `Relay MCP between an agent and the gateway's server <server>. By default the
agent speaks JSON-RPC on stdin and stdout; with --listen, bridge serves Streamable
HTTP at /mcp and the legacy HTTP+SSE transport at /sse on a loopback port, and
prints their URLs with a secret made for this launch (?token=…); requests
without it (as the query parameter, Authorization: Bearer, or the cookie set on
the first use of the URL) are refused.
Diagnostics go to stderr; stdout carries nothing but JSON-RPC.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Server = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return connectRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Gateway, "gateway", "", "the gateway's `URL` (default: the one bridge login saved)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "serve HTTP on this loopback address (127.0.0.1:PORT) instead of stdio")
	cmd.Flags().StringVar(&opts.LogLevel, "log-level", "info", "stderr log level: debug, info, warn or error")
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "when a login is needed, do not open a browser (the link still goes to stderr and the agent)")
	return cmd
}

func connectRun(ctx context.Context, opts *ConnectOptions) error {
	f := opts.F
	log, err := newLogger(f, opts.LogLevel, false)
	if err != nil {
		return err
	}
	home, prof, gw, err := resolveClient(f, opts.Gateway)
	if err != nil {
		return err
	}
	hc := f.HTTPClient()
	var src auth.AccessTokenSource
	var onAgent func(connect.AgentLink)
	if tok := f.Getenv(auth.TokenEnv); tok != "" {
		src = auth.StaticSource(auth.Secret(tok))
	} else {
		al := &autoLogin{src: storeSource(f, home, prof, gw, hc), f: f, home: home, gateway: gw, browser: !opts.NoBrowser, log: f.IO.ErrOut}
		src, onAgent = al, al.setLink
	}
	copts := connect.Options{
		Gateway: gw, Server: opts.Server, HTTPClient: hc, Logger: log,
		Token: func(ctx context.Context) (string, error) {
			tok, err := src.Token(ctx)
			if err != nil {
				if errors.Is(err, auth.ErrNotLoggedIn) {
					return "", bridge.Errorf(bridge.CodeUnavailable,
						fmt.Sprintf("bridge: not logged in to %s: run `bridge login` in a terminal, then retry", gw), err)
				}
				return "", bridge.Errorf(bridge.CodeUnavailable, "bridge: no usable token: "+err.Error(), err)
			}
			return tok.Reveal(), nil
		},
		Invalidate: func(ctx context.Context, used string) { src.Invalidate(ctx, auth.Secret(used)) },
		OnAgent:    onAgent,
	}
	if opts.Listen != "" {
		return connect.Listen(ctx, copts, opts.Listen, func(a net.Addr, secret string) {
			// The secret goes to the developer's terminal, never to a log
			// line: it is printed once, in the URLs to give the agent.
			log.Info("listening", "addr", a.String(), "gateway", gw, "server", opts.Server)
			q := "?" + url.Values{connect.SecretParam: {secret}}.Encode()
			fmt.Fprintf(f.IO.ErrOut, "bridge connect: give your agent one of these URLs (they hold this launch's secret):\n  Streamable HTTP: http://%s/mcp%s\n  HTTP+SSE:        http://%s/sse%s\n", a, q, a, q)
		})
	}
	log.Debug("relaying stdio", "gateway", gw, "server", opts.Server)
	return connect.RunStdio(ctx, copts, f.IO.In, f.IO.Out)
}

// newLogger returns a logger on stderr, as JSON for services.
func newLogger(f *Factory, level string, asJSON bool) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	hopts := &slog.HandlerOptions{Level: lv}
	if asJSON {
		return slog.New(slog.NewJSONHandler(f.IO.ErrOut, hopts)), nil
	}
	return slog.New(slog.NewTextHandler(f.IO.ErrOut, hopts)), nil
}
