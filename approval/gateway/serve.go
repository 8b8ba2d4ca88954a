package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/auth"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	// Config is the loaded configuration.
	Config *config.Config
	// Reload loads the configuration again; it is called on each value
	// from ReloadRequests (SIGHUP). An invalid configuration is logged and
	// the running one kept.
	Reload         func() (*config.Config, error)
	ReloadRequests <-chan struct{}
	// Listener, if set, is used instead of listening on Config.Listen.
	Listener net.Listener
	// Mount adds handlers beside the gateway's, such as dev mode's
	// identity provider. It is called on every (re)build.
	Mount func(mux *http.ServeMux)
	// Ready is called with the base URL once the gateway accepts requests.
	Ready      func(baseURL string)
	Logger     *slog.Logger
	HTTPClient *http.Client
	// Pipeline, if set, builds the pipeline stages for a configuration.
	Pipeline func(cfg *config.Config) ([]Middleware, func(), error)
}

// Serve runs the gateway until ctx ends, then stops every session and
// upstream and returns.
func Serve(ctx context.Context, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	build := func(cfg *config.Config) (*Gateway, func(), error) {
		v, err := auth.NewVerifier(auth.VerifierConfig{
			Issuer: cfg.Identity.Issuer, Audience: cfg.Identity.Audience, GroupsClaim: cfg.Identity.GroupsClaim,
			ClockSkew: cfg.Identity.ClockSkew, HTTPClient: opts.HTTPClient,
		})
		if err != nil {
			return nil, nil, err
		}
		var stages []Middleware
		cleanup := func() {}
		if opts.Pipeline != nil {
			if stages, cleanup, err = opts.Pipeline(cfg); err != nil {
				return nil, nil, err
			}
		}
		g, err := New(Options{Config: cfg, Verifier: v, Logger: log, HTTPClient: opts.HTTPClient, Pipeline: stages})
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		if opts.Mount != nil {
			opts.Mount(g.Mux())
		}
		return g, cleanup, nil
	}
	g, cleanup, err := build(opts.Config)
	if err != nil {
		return err
	}
	var current atomic.Pointer[Gateway]
	current.Store(g)
	defer func() { current.Load().Close(); cleanup() }()

	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Config.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", opts.Config.Listen, err)
		}
	}
	scheme := "http"
	if t := opts.Config.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			current.Load().Handler().ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	base := scheme + "://" + ln.Addr().String()
	log.Info("gateway listening", "url", base, "servers", g.ServerNames())
	if opts.Ready != nil {
		opts.Ready(base)
	}

	reap := time.NewTicker(time.Minute)
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("gateway stopping")
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			current.Load().Close()
			_ = hs.Shutdown(sctx)
			return nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case <-reap.C:
			current.Load().ReapIdle()
		case <-opts.ReloadRequests:
			if opts.Reload == nil {
				continue
			}
			cfg, err := opts.Reload()
			if err != nil {
				log.Error("configuration reload refused; keeping the running configuration", "err", err)
				continue
			}
			ng, ncleanup, err := build(cfg)
			if err != nil {
				log.Error("configuration reload refused; keeping the running configuration", "err", err)
				continue
			}
			old, oldCleanup := current.Swap(ng), cleanup
			cleanup = ncleanup
			old.Close()
			oldCleanup()
			log.Info("configuration reloaded", "servers", ng.ServerNames(), "policy_version", policyVersion(cfg))
		}
	}
}

func policyVersion(cfg *config.Config) string {
	if cfg.CompiledPolicy == nil {
		return ""
	}
	return cfg.CompiledPolicy.Version()
}
