package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/pins"
	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
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
	Now        func() time.Time
	// ExtraStages run innermost in the pipeline (tests observe with them).
	ExtraStages []Middleware
	// Clock drives approval holds and expiry; the wall clock when nil.
	Clock Clock
	// Services, if set, is told the approval queue and audit log once they
	// are open, for tests that act as reviewers.
	Services func(q *queue.Queue, log *audit.Log)
	// WrapAuditStore, if set, wraps the audit log's store: fault-injection
	// tests use it to make the store fail.
	WrapAuditStore func(audit.Store) audit.Store
}

// services are what outlives a configuration reload: the database, the
// audit log and the approval queue.
type services struct {
	store     *audit.BoltStore    // the bbolt file: approvals, pins
	segs      *audit.SegmentStore // the audit log's records
	log       *audit.Log
	recorder  *Recorder
	approvals *Approvals
	queue     *queue.Queue
	notify    *queue.Dispatcher
	pins      *pins.Store
	hook      *webhookWitness // nil unless audit.witness.webhook
	// policy is the running configuration's policy, for the queue's check
	// of reviewers' edits.
	policy *atomic.Pointer[policy.Policy]
	// closers end long-lived streams (reviewer events) at shutdown.
	closers []func()
}

// openServices opens the database and the audit log: the approval queue
// and tool pins in the bbolt file at storage.path, the audit records in the
// segment log beside it (audit.SegmentDir). Records a gateway of an earlier
// version kept in the bbolt file are moved to the segment log first. A
// corrupt or foreign file is refused, never overwritten.
func openServices(cfg *config.Config, logger *slog.Logger, now func() time.Time, wrap func(audit.Store) audit.Store) (*services, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Storage.Path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	store, err := audit.OpenBolt(cfg.Storage.Path, audit.BoltOptions{Mode: 0o600})
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", cfg.Storage.Path, err)
	}
	segDir := audit.SegmentDir(cfg.Storage.Path)
	segs, err := audit.OpenSegments(segDir, audit.SegmentOptions{Durability: cfg.Audit.DurabilityLevel(), Logger: logger})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("audit log %s: %w", segDir, err)
	}
	closeStores := func() {
		segs.Close()
		store.Close()
	}
	if n, err := audit.MoveFromBolt(context.Background(), store, segs); err != nil {
		closeStores()
		return nil, fmt.Errorf("audit log: moving the records of %s to %s: %w (the bbolt file is unchanged; the move resumes at the next start)", cfg.Storage.Path, segDir, err)
	} else if n > 0 {
		logger.Info("audit log moved from the bbolt file to the segment log", "records", n, "dir", segDir)
	}
	signer, err := cfg.Audit.LoadSigner()
	if err != nil {
		closeStores()
		return nil, err
	}
	witnesses, heads, hook, err := auditWitnesses(cfg, now, logger)
	if err != nil {
		closeStores()
		return nil, err
	}
	var logStore audit.Store = segs
	if wrap != nil {
		logStore = wrap(segs)
	}
	alog, err := audit.Open(logStore, audit.Options{
		Now: now, Signer: signer, SignEvery: cfg.Audit.SignEvery, SignInterval: cfg.Audit.SignInterval,
		Heads: heads, Witnesses: witnesses, Logger: logger,
	})
	if err != nil {
		if hook != nil {
			hook.Close()
		}
		closeStores()
		return nil, fmt.Errorf("audit log %s: %w", segDir, err)
	}
	qstore, err := queue.NewBoltStore(store.DB())
	if err != nil {
		alog.Close()
		closeStores()
		return nil, fmt.Errorf("approval queue: %w", err)
	}
	notify := queue.NewDispatcher(queue.DispatcherOptions{Senders: senders(cfg, now), Logger: logger})
	current := &atomic.Pointer[policy.Policy]{}
	q, err := queue.New(qstore, queue.Options{Now: now, Notifier: notify, Logger: logger,
		MaxPendingPerRequester: cfg.Approvals.MaxPendingPerRequester, MaxArgsBytes: cfg.Approvals.MaxArgsBytes,
		CheckEdit: EditCheck(current)})
	if err != nil {
		notify.Close()
		alog.Close()
		closeStores()
		return nil, fmt.Errorf("approval queue: %w", err)
	}
	pinStore, err := pins.Open(store.DB(), now)
	if err != nil {
		notify.Close()
		alog.Close()
		closeStores()
		return nil, fmt.Errorf("tool pins: %w", err)
	}
	return &services{store: store, segs: segs, log: alog, queue: q, notify: notify, pins: pinStore, hook: hook, policy: current}, nil
}

// auditWitnesses opens the witnesses of the configuration and reads the
// file witness's latest head, which the log must continue.
func auditWitnesses(cfg *config.Config, now func() time.Time, logger *slog.Logger) ([]audit.Witness, []audit.Checkpoint, *webhookWitness, error) {
	var ws []audit.Witness
	var heads []audit.Checkpoint
	if p := cfg.Audit.Witness.File; p != "" {
		fw := audit.NewFileWitness(p)
		h, err := fw.Latest()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("audit.witness.file: %w", err)
		}
		if h != nil {
			heads = append(heads, *h)
		}
		ws = append(ws, fw)
	}
	var hook *webhookWitness
	if cfg.Audit.Witness.Webhook {
		hook = newWebhookWitness(cfg, now, logger)
		ws = append(ws, hook)
	}
	return ws, heads, hook, nil
}

// senders builds the notification receivers of the configuration.
func senders(cfg *config.Config, now func() time.Time) []queue.Sender {
	var out []queue.Sender
	for _, n := range cfg.Notify {
		switch n.Type {
		case "slack":
			out = append(out, &queue.Slack{WebhookURL: n.ResolvedURL})
		case "webhook":
			out = append(out, &queue.Webhook{URL: n.ResolvedURL.Reveal(), Secret: n.ResolvedSecret, Now: now})
		}
	}
	return out
}

func (s *services) close() {
	s.notify.Close()
	if err := s.log.Close(); err != nil {
		slog.Default().Error("closing the audit log", "err", err)
	}
	if s.hook != nil {
		s.hook.Close()
	}
	if err := s.segs.Close(); err != nil {
		slog.Default().Error("closing the audit segment log", "err", err)
	}
	_ = s.store.Close()
}

// Serve runs the gateway until ctx ends, then stops every session and
// upstream, records the stop, and returns.
func Serve(ctx context.Context, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = RealClock{}
	}
	now := clock.Now
	svc, err := openServices(opts.Config, log, now, opts.WrapAuditStore)
	if err != nil {
		return err
	}
	defer svc.close()
	if opts.Services != nil {
		opts.Services(svc.queue, svc.log)
	}

	build := func(cfg *config.Config) (*Gateway, error) {
		v, err := auth.NewVerifier(auth.VerifierConfig{
			Issuer: cfg.Identity.Issuer, Audience: cfg.Identity.Audience, GroupsClaim: cfg.Identity.GroupsClaim,
			ClockSkew: cfg.Identity.ClockSkew, HTTPClient: opts.HTTPClient, Now: now,
		})
		if err != nil {
			return nil, err
		}
		rec := NewRecorder(svc.log, cfg.Audit, ServerMasker(cfg), log, now, svc.queue.Digester())
		approvals := NewApprovals(svc.queue, ApprovalsOptions{Clock: clock, Logger: log, Recorder: rec,
			Policy: cfg.CompiledPolicy, MaskFor: ServerMasker(cfg)})
		var pinning *Pinning
		if !cfg.Pinning.Disabled {
			pinning = NewPinning(svc.pins, cfg.Pinning, approvals, rec, log)
		}
		tasks := NewTasks(0, 0)
		stages := DefaultStages(cfg, StageDeps{Logger: log, Now: now, Recorder: rec, Holder: approvals, Pinning: pinning, Tasks: tasks, Extra: opts.ExtraStages})
		reviewers := queue.NewHandler(svc.queue, reviewerOf, queue.HandlerOptions{Logger: log})
		svc.closers = append(svc.closers, reviewers.Close) // event streams end on shutdown
		mounts := map[string]http.Handler{"/v1/approvals": reviewers, "/v1/approvals/": reviewers}
		mounts[audit.APIPrefix] = audit.NewHandler(svc.log, audit.HandlerOptions{
			Identify: func(r *http.Request) (string, []string, bool) {
				id, ok := IdentityFrom(r.Context())
				if !ok {
					return "", nil, false
				}
				return id.Subject, id.Groups, true
			},
			Auditors: cfg.Audit.IsAuditor, Now: now, Logger: log,
		})
		if pinning != nil {
			mounts["/v1/pins"] = pinning.Handler()
			mounts["/v1/pins/"] = pinning.Handler()
		}
		g, err := New(Options{
			Config: cfg, Verifier: v, Logger: log, Now: now, HTTPClient: opts.HTTPClient, Pipeline: stages,
			OnSession: func(info *bridge.SessionInfo, started bool, reason string) {
				rec.SessionEvent(info, started, reason)
				tasks.SessionEvent(info, started, reason)
			},
			OnLimit: NewLimitAudit(rec, now).Refused,
			Mounts:  mounts,
		})
		if err != nil {
			return nil, err
		}
		if opts.Mount != nil {
			opts.Mount(g.Mux())
		}
		svc.recorder, svc.approvals = rec, approvals
		svc.policy.Store(cfg.CompiledPolicy)
		return g, nil
	}
	g, err := build(opts.Config)
	if err != nil {
		return err
	}
	if err := svc.recorder.Event(ctx, &audit.Record{Kind: audit.KindGatewayStart, Outcome: "policy " + policyVersion(opts.Config)}); err != nil {
		return fmt.Errorf("the audit log cannot be written, not starting: %w", err)
	}
	// Reviews, expiry and cancellations happen outside any held call; the
	// queue's events put them in the audit log.
	evCtx, evCancel := context.WithCancel(context.Background())
	evDone := make(chan struct{})
	events := svc.approvals // read here: reloads replace svc.approvals
	go func() { defer close(evDone); events.RecordEvents(evCtx) }()
	defer func() { evCancel(); <-evDone }()

	var current atomic.Pointer[Gateway]
	current.Store(g)
	defer func() {
		current.Load().Close()
		_ = svc.recorder.Event(context.Background(), &audit.Record{Kind: audit.KindGatewayStop})
	}()

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
		// Limits on slow clients: headers and idle keep-alive connections
		// here; bodies per request in the relay (limits.body_read_timeout).
		ReadHeaderTimeout: opts.Config.Limits.HeaderReadTimeout,
		IdleTimeout:       opts.Config.Limits.ConnectionIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	hs.RegisterOnShutdown(func() {
		for _, c := range svc.closers {
			c()
		}
	})
	go func() { errc <- hs.Serve(ln) }()
	base := scheme + "://" + ln.Addr().String()
	for _, w := range opts.Config.Warnings {
		log.Warn("configuration warning", "warning", w.Error())
	}
	log.Info("gateway listening", "url", base, "servers", g.ServerNames(), "policy_version", policyVersion(opts.Config))
	if opts.Ready != nil {
		opts.Ready(base)
	}

	reap := time.NewTicker(time.Minute)
	defer reap.Stop()
	expire := time.NewTicker(5 * time.Second)
	defer expire.Stop()
	for {
		select {
		case <-expire.C:
			if _, err := svc.queue.ExpireDue(ctx); err != nil {
				log.Error("expiring approval requests failed", "err", err)
			}
		case <-ctx.Done():
			log.Info("gateway stopping")
			svc.approvals.Shutdown()
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
			if ret := opts.Config.Audit.Retention; ret > 0 {
				if res, err := svc.log.Prune(ctx, now().Add(-ret)); err != nil {
					log.Error("audit retention failed", "err", err)
				} else if res.Pruned > 0 {
					log.Info("audit retention pruned records", "count", res.Pruned, "through", res.Through)
				}
			}
		case <-opts.ReloadRequests:
			reload(ctx, opts, log, svc, &current, build)
		}
	}
}

// reload swaps in a new configuration if it is valid. Sessions of the old
// configuration end; bridge connect re-establishes them transparently.
func reload(ctx context.Context, opts ServeOptions, log *slog.Logger, svc *services, current *atomic.Pointer[Gateway], build func(*config.Config) (*Gateway, error)) {
	if opts.Reload == nil {
		return
	}
	cfg, err := opts.Reload()
	if err != nil {
		log.Error("configuration reload refused; keeping the running configuration", "err", err)
		return
	}
	if cfg.Storage != opts.Config.Storage || cfg.Listen != opts.Config.Listen {
		log.Warn("storage and listen changes take effect only after a restart")
	}
	oldApprovals := svc.approvals
	ng, err := build(cfg)
	if err != nil {
		log.Error("configuration reload refused; keeping the running configuration", "err", err)
		return
	}
	old := current.Swap(ng)
	oldApprovals.Shutdown() // held calls end; their requests stay pending
	old.Close()
	_ = svc.recorder.Event(ctx, &audit.Record{Kind: audit.KindPolicyReload, Outcome: "policy " + policyVersion(cfg)})
	log.Info("configuration reloaded", "servers", ng.ServerNames(), "policy_version", policyVersion(cfg))
}

// reviewerOf is the verified caller of a reviewer API request.
func reviewerOf(r *http.Request) (queue.Reviewer, bool) {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return queue.Reviewer{}, false
	}
	return queue.Reviewer{Subject: id.Subject, Email: id.Email, Groups: id.Groups}, true
}

func policyVersion(cfg *config.Config) string {
	if cfg.CompiledPolicy == nil {
		return ""
	}
	return cfg.CompiledPolicy.Version()
}
