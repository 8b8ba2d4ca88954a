// Package gateway is bridge's central service: it authenticates every call
// with the caller's Okta token, runs each message through the pipeline
// (policy, approval, masking, audit), and relays it to the upstream MCP
// server with credentials that only the gateway holds.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TokenVerifier verifies an access token and returns the caller's identity.
// auth.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (*auth.Identity, error)
}

// Options are a gateway's dependencies.
type Options struct {
	Config   *config.Config
	Verifier TokenVerifier
	Logger   *slog.Logger
	Now      func() time.Time
	// HTTPClient reaches http and sse upstreams.
	HTTPClient *http.Client
	// BaseEnv is the environment every stdio upstream starts with, before
	// its configured env; by default a few variables that programs need
	// (PATH, HOME, temp and system directories), never the whole
	// environment of the gateway.
	BaseEnv []string
	// Pipeline wraps the relay's forwarding with the gateway's stages, in
	// order, outermost first. Nil means DefaultStages without approvals or
	// audit.
	Pipeline []Middleware
	// OnSession is told when sessions start and end (the audit log).
	OnSession func(info *bridge.SessionInfo, started bool, reason string)
	// OnLimit is told of each request a limit refused (the audit log,
	// through a LimitAudit).
	OnLimit func(server, subject string, principal any, err *bridge.LimitError)
	// Mounts are extra handlers on the gateway's router, by pattern,
	// behind its bearer-token authentication (the reviewer and audit APIs).
	Mounts map[string]http.Handler
}

// Gateway serves the MCP endpoints and the discovery documents.
type Gateway struct {
	cfg      *config.Config
	verifier TokenVerifier
	log      *slog.Logger
	now      func() time.Time
	servers  map[string]*bridge.Server
	names    []string
	mux      *http.ServeMux
}

// New builds a gateway from a loaded configuration.
func New(opts Options) (*Gateway, error) {
	if opts.Config == nil || opts.Verifier == nil {
		return nil, errors.New("gateway: Config and Verifier are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.BaseEnv == nil {
		opts.BaseEnv = DefaultBaseEnv()
	}
	if opts.Pipeline == nil {
		tasks := NewTasks(0, 0)
		opts.Pipeline = DefaultStages(opts.Config, StageDeps{Logger: opts.Logger, Now: opts.Now, Tasks: tasks})
		onSession := opts.OnSession
		opts.OnSession = func(info *bridge.SessionInfo, started bool, reason string) {
			if onSession != nil {
				onSession(info, started, reason)
			}
			tasks.SessionEvent(info, started, reason)
		}
	}
	g := &Gateway{cfg: opts.Config, verifier: newVerifyCache(opts.Verifier, opts.Now, opts.Config.Identity.ClockSkew), log: opts.Logger, now: opts.Now, servers: map[string]*bridge.Server{}}
	filter := Chain(opts.Pipeline...)
	limits := opts.Config.Limits
	b := newBudgets(limits)
	for name, sc := range opts.Config.Servers {
		var onLimit func(string, any, *bridge.LimitError)
		if opts.OnLimit != nil {
			onLimit = func(subject string, principal any, le *bridge.LimitError) { opts.OnLimit(name, subject, principal, le) }
		}
		srv, err := bridge.NewServer(bridge.ServerOptions{
			Server:          name,
			Dial:            dialer(name, sc, opts, b.processes),
			Identify:        identify,
			Filter:          filter,
			MaxMessageBytes: limits.MaxMessageBytes,
			IdleTimeout:     limits.SessionIdleTimeout,
			Logger:          opts.Logger,
			Now:             opts.Now,
			OnSession:       opts.OnSession,
			Limits:          b.serverLimits(limits),
			OnLimit:         onLimit,
			Expiry:          expiryOf,
		})
		if err != nil {
			return nil, err
		}
		g.servers[name] = srv
		g.names = append(g.names, name)
	}
	sort.Strings(g.names)
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("GET /.well-known/bridge-configuration", g.serveBridgeConfiguration)
	g.mux.HandleFunc("GET /.well-known/oauth-protected-resource", g.serveResourceMetadata)
	g.mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp/{server}", g.serveResourceMetadata)
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	g.mux.Handle("/mcp/{server}", g.authenticate(http.HandlerFunc(g.serveMCP)))
	g.mux.Handle("GET /v1/whoami", g.authenticate(http.HandlerFunc(g.serveWhoami)))
	for pattern, h := range opts.Mounts {
		g.mux.Handle(pattern, g.authenticate(h))
	}
	return g, nil
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.mux }

// Mux exposes the router so that dev mode can mount its identity provider.
func (g *Gateway) Mux() *http.ServeMux { return g.mux }

// ServerNames lists the configured upstreams.
func (g *Gateway) ServerNames() []string { return append([]string(nil), g.names...) }

// ReapIdle ends idle sessions on every server; run it periodically.
func (g *Gateway) ReapIdle() {
	for _, s := range g.servers {
		s.ReapIdle()
	}
}

// Close ends every session and stops every upstream.
func (g *Gateway) Close() {
	for _, s := range g.servers {
		s.Close()
	}
}

// publicURL is the gateway's base URL as clients see it.
func (g *Gateway) publicURL(r *http.Request) string {
	if g.cfg.PublicURL != "" {
		return strings.TrimRight(g.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (g *Gateway) serveBridgeConfiguration(w http.ResponseWriter, _ *http.Request) {
	id := g.cfg.Identity
	writeJSON(w, http.StatusOK, auth.BridgeConfiguration{
		Issuer: id.Issuer, ClientID: id.ClientID, Audience: id.Audience, Scopes: id.Scopes, GroupsClaim: id.GroupsClaim,
	})
}

// serveResourceMetadata serves RFC 9728 protected-resource metadata.
func (g *Gateway) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	resource := g.publicURL(r)
	if s := r.PathValue("server"); s != "" {
		resource += "/mcp/" + s
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 resource,
		"authorization_servers":    []string{g.cfg.Identity.Issuer},
		"scopes_supported":         g.cfg.Identity.Scopes,
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "bridge MCP gateway",
	})
}

func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("server")
	srv, ok := g.servers[name]
	if !ok {
		writeRPCError(w, http.StatusNotFound, bridge.CodeInvalidRequest,
			fmt.Sprintf("unknown server %q: this gateway serves %s", name, strings.Join(g.names, ", ")))
		return
	}
	srv.ServeHTTP(w, r)
}

// serveWhoami tells a client who its token speaks for.
func (g *Gateway) serveWhoami(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"subject": id.Subject, "email": id.Email, "name": id.Name, "groups": id.Groups, "expires_at": id.ExpiresAt,
		"servers": g.names,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRPCError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(bridge.NewError(nil, code, msg).Raw)
	_, _ = w.Write([]byte("\n"))
}
