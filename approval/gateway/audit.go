package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// Recorder writes the audit record of every message and of the gateway's
// own events. Records hold masked messages only. When a record cannot be
// written the message it belongs to is refused (audit.on_failure: deny,
// the default) and the failure is logged at error level.
type Recorder struct {
	log      *audit.Log
	failOpen bool
	logger   *slog.Logger
	now      func() time.Time
	maskFor  func(server string) (*mask.Masker, bool)
	digest   *policy.Digester
}

// NewRecorder returns a Recorder writing to log. Argument digests in
// records are keyed with digest (the approval queue's); with nil, records
// carry none.
func NewRecorder(log *audit.Log, cfg audit.Config, maskFor func(server string) (*mask.Masker, bool), logger *slog.Logger, now func() time.Time, digest *policy.Digester) *Recorder {
	return &Recorder{log: log, failOpen: cfg.FailOpen(), logger: logger, now: now, maskFor: maskFor, digest: digest}
}

// errAuditUnavailable is what a client sees when its message was refused
// because it could not be recorded.
func errAuditUnavailable(cause error) error {
	return bridge.Errorf(bridge.CodeRefused,
		"bridge: the gateway could not write its audit record, so it refused this call; try again shortly, and tell your bridge admin if it persists", cause)
}

// Event records one of the gateway's own events (start, stop, sessions,
// approvals, reloads). It honours on_failure like message records.
func (r *Recorder) Event(ctx context.Context, rec *audit.Record) error {
	// A record is written even when the client has gone: what happened
	// must be on file.
	if _, err := r.log.Append(context.WithoutCancel(ctx), rec); err != nil {
		r.logger.Error("AUDIT WRITE FAILED", "kind", rec.Kind, "err", err, "on_failure", map[bool]string{true: "allow", false: "deny"}[r.failOpen])
		if r.failOpen {
			return nil
		}
		return errAuditUnavailable(err)
	}
	return nil
}

// SessionEvent records a session's start or end.
func (r *Recorder) SessionEvent(info *bridge.SessionInfo, started bool, reason string) {
	rec := &audit.Record{Kind: audit.KindSessionEnd, Session: info.ID, Server: info.Server, Identity: identityOf(info, info.Principal), Outcome: reason}
	if started {
		rec.Kind, rec.Outcome = audit.KindSessionStart, ""
	}
	_ = r.Event(context.Background(), rec)
}

// Middleware records each message after the inner stages decided it, so the
// record holds the decision and the masked message that was forwarded. The
// message goes on only once its record is durable.
func (r *Recorder) Middleware() Middleware {
	return func(next bridge.Filter) bridge.Filter {
		return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
			ctx, note := withNote(ctx)
			v, ferr := next.Filter(ctx, x, m)
			for _, rec := range r.records(x, m, v, ferr, note) {
				if err := r.Event(ctx, rec); err != nil {
					return bridge.Verdict{}, err
				}
			}
			return v, ferr
		})
	}
}

// records builds the audit records of one filtered message: the message
// itself and, when the gateway answered in the upstream's place, its answer.
func (r *Recorder) records(x *bridge.Exchange, m *bridge.Message, v bridge.Verdict, ferr error, note *Note) []*audit.Record {
	base := audit.Record{
		Session:  x.Session.ID,
		Server:   x.Session.Server,
		Identity: identityOf(x.Session, x.Principal),
		Method:   m.Method,
		RequestID: func() string {
			if m.ID != nil {
				return string(m.ID)
			}
			return ""
		}(),
		Decision:   note.Decision,
		Rule:       note.Rule,
		Reason:     note.Reason,
		ApprovalID: note.ApprovalID,
		Reviewers:  note.Reviewers,
		Masked:     note.Masked,
		Direction:  audit.ToServer,
	}
	if x.Direction == bridge.FromUpstream {
		base.Direction = audit.ToClient
	}
	req := m
	if m.Kind == bridge.KindResponse && x.Request != nil {
		req = x.Request
		base.Method = x.Request.Method
		if !x.RequestStarted.IsZero() {
			base.LatencyMicros = r.now().Sub(x.RequestStarted).Microseconds()
		}
	}
	if req.Kind == bridge.KindRequest {
		c := CallOf(req)
		base.Tool = c.Target
		switch {
		case note.ArgsDigest != "": // the approval stage's: of what ran
			base.ArgsDigest = note.ArgsDigest
		case c.Args != nil && r.digest != nil:
			base.ArgsDigest = r.digest.Args(c.Args)
		}
	}
	if ferr != nil {
		base.Error = publicText(ferr)
	}

	rec := base
	switch {
	case m.Kind == bridge.KindRequest && x.Direction == bridge.FromClient:
		rec.Kind = audit.KindRequest
	case m.Kind == bridge.KindRequest:
		rec.Kind = audit.KindServerRequest
	case m.Kind == bridge.KindResponse && x.Direction == bridge.FromUpstream:
		rec.Kind = audit.KindResponse
	case m.Kind == bridge.KindResponse:
		rec.Kind = audit.KindClientResponse
	default:
		rec.Kind = audit.KindNotification
	}
	out := m
	if v.Forward != nil {
		out = v.Forward
	}
	if summarize(x, m) {
		// What a client can send at will and the gateway only passes on is
		// kept as its size and digest: one client must not be able to
		// grow the log by megabytes per message.
		rec.Message = summary(m)
		if len(rec.Method) > 128 {
			rec.Method = rec.Method[:128] + "…"
		}
		rec.Outcome = "stored as a summary: the gateway does not act on this notification"
		if ferr != nil || (v.Forward == nil && v.Reply == nil) {
			rec.Outcome = "refused; stored as a summary"
		}
		return []*audit.Record{&rec}
	}
	rec.Message = r.masked(x.Session.Server, out)
	if m.Kind == bridge.KindResponse {
		rec.Outcome = Outcome(out)
	}
	if ferr != nil || (v.Forward == nil && v.Reply == nil) {
		rec.Outcome = "refused"
	}
	// The decision rides on the request's own record: a separate record
	// would cost every call one more fsync before it is forwarded.
	recs := []*audit.Record{&rec}
	if v.Reply != nil {
		reply := base
		reply.Kind = audit.KindResponse
		reply.Direction = audit.ToClient
		if x.Direction == bridge.FromUpstream {
			reply.Kind, reply.Direction = audit.KindClientResponse, audit.ToServer
		}
		reply.Message = r.masked(x.Session.Server, v.Reply)
		reply.Outcome = "answered by gateway: " + Outcome(v.Reply)
		recs = append(recs, &reply)
	}
	return recs
}

// actedOn are the client notifications the gateway itself acts on, which
// are recorded whole when they are no bigger than maxWholeNotification.
var actedOn = map[string]bool{"notifications/cancelled": true, "notifications/initialized": true}

// maxWholeNotification bounds a client notification recorded whole; a
// cancellation or initialized notification is about a hundred bytes.
const maxWholeNotification = 4 << 10

// summarize reports whether a message is recorded as a summary: a
// notification from the client, unless it is one the gateway acts on and
// of ordinary size.
func summarize(x *bridge.Exchange, m *bridge.Message) bool {
	if m.Kind != bridge.KindNotification || x.Direction != bridge.FromClient {
		return false
	}
	return !actedOn[m.Method] || len(m.Raw) > maxWholeNotification
}

// summary is the record of a message that is not stored whole: its size
// and SHA-256 (the method is the record's own field).
func summary(m *bridge.Message) json.RawMessage {
	sum := sha256.Sum256(m.Raw)
	b, _ := json.Marshal(map[string]any{"bridge_summary": map[string]any{"bytes": len(m.Raw), "sha256": hex.EncodeToString(sum[:])}})
	return b
}

// masked returns a message with sensitive values masked for the record.
// Messages to the client are already masked; arguments from the client
// are masked here, so that no log or record holds them in the clear.
func (r *Recorder) masked(server string, m *bridge.Message) json.RawMessage {
	masker, ok := r.maskFor(server)
	if !ok {
		return nil
	}
	out, _, err := masker.MaskMessage(m.Raw)
	if err != nil {
		return nil // never store what could not be masked
	}
	return out
}

func identityOf(info *bridge.SessionInfo, principal any) audit.Identity {
	id := principalOf(&bridge.Exchange{Principal: principal})
	name, version := info.Client()
	return audit.Identity{Subject: id.Subject, Email: id.Email, Groups: id.Groups, ClientName: name, ClientVersion: version}
}

// publicText is the client-safe text of an error.
func publicText(err error) string {
	var pe bridge.PublicError
	if errors.As(err, &pe) {
		_, msg := pe.Public()
		return msg
	}
	return "internal error"
}
