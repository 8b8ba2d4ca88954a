package gateway

import (
	"context"
	"log/slog"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// Middleware is one stage of the gateway's pipeline. It receives the rest of
// the pipeline as next and may act before and after it, answer in its
// place, or refuse. Policy, approval, masking and audit are middlewares.
type Middleware func(next bridge.Filter) bridge.Filter

// Chain composes stages, outermost first, ending in forwarding.
func Chain(stages ...Middleware) bridge.Filter {
	f := bridge.PassThrough
	for i := len(stages) - 1; i >= 0; i-- {
		f = stages[i](f)
	}
	return f
}

// Outcome classifies a response for logs and audit: ok, error (a JSON-RPC
// error) or tool_error (a tool result with isError). It decodes the result
// once per message: the access log and the audit stage both ask.
func Outcome(m *bridge.Message) string {
	if m.Error != nil {
		return "error"
	}
	return m.Derived(outcomeKey{}, func() any { return outcomeOf(m) }).(string)
}

type outcomeKey struct{}

func outcomeOf(m *bridge.Message) string {
	var r struct {
		IsError bool `json:"isError"`
	}
	if jsonv2.Unmarshal(m.Result, &r) == nil && r.IsError {
		return "tool_error"
	}
	return "ok"
}

// principalOf returns the identity of an exchange.
func principalOf(x *bridge.Exchange) *auth.Identity {
	if id, ok := x.Principal.(*auth.Identity); ok && id != nil {
		return id
	}
	return &auth.Identity{}
}

// AccessLog records who called what and the outcome in the structured log:
// identities, methods, targets, outcomes and latency, never arguments,
// results or tokens. It builds each line's attributes in a fixed array with
// slog.LogAttrs (no []any boxing, no maps), and builds nothing when the
// logger does not log at info level.
func AccessLog(log *slog.Logger, now func() time.Time) Middleware {
	return func(next bridge.Filter) bridge.Filter {
		return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
			ctx, note := withNote(ctx)
			v, err := next.Filter(ctx, x, m)
			if !log.Enabled(ctx, slog.LevelInfo) {
				return v, err
			}
			var buf [accessLogAttrs]slog.Attr
			attrs := appendAccessAttrs(buf[:0], x, m, v, err, note, now)
			log.LogAttrs(ctx, slog.LevelInfo, "mcp", attrs...)
			return v, err
		})
	}
}

// accessLogAttrs is the most attributes one access log line has.
const accessLogAttrs = 18

// appendAccessAttrs appends the attributes of one access log line.
func appendAccessAttrs(attrs []slog.Attr, x *bridge.Exchange, m *bridge.Message, v bridge.Verdict, err error, note *Note, now func() time.Time) []slog.Attr {
	id := principalOf(x)
	attrs = append(attrs,
		slog.String("session", x.Session.ID), slog.String("server", x.Session.Server),
		slog.String("subject", id.Subject), slog.String("email", id.Email),
		slog.String("direction", x.Direction.String()), slog.String("kind", m.Kind.String()))
	switch {
	case m.Kind == bridge.KindResponse && x.Request != nil:
		c := CallOf(x.Request)
		attrs = append(attrs, slog.String("method", c.Method), slog.String("target", c.Target), slog.String("id", string(m.ID)))
		out := m
		if v.Forward != nil {
			out = v.Forward
		}
		attrs = append(attrs, slog.String("outcome", Outcome(out)))
		if !x.RequestStarted.IsZero() {
			attrs = append(attrs, slog.Float64("latency_ms", float64(now().Sub(x.RequestStarted).Microseconds())/1000))
		}
	case m.Kind == bridge.KindRequest:
		c := CallOf(m)
		attrs = append(attrs, slog.String("method", c.Method), slog.String("target", c.Target), slog.String("id", string(m.ID)))
		switch {
		case err != nil:
			attrs = append(attrs, slog.String("decision", "refused"))
		case v.Reply != nil:
			attrs = append(attrs, slog.String("decision", "answered by gateway"), slog.String("outcome", Outcome(v.Reply)))
		default:
			attrs = append(attrs, slog.String("decision", "forwarded"))
		}
	default:
		attrs = append(attrs, slog.String("method", m.Method))
	}
	if note.Decision != "" {
		attrs = append(attrs, slog.String("policy", note.Decision), slog.String("rule", note.Rule))
	}
	if note.ApprovalID != "" {
		attrs = append(attrs, slog.String("approval", note.ApprovalID))
	}
	if len(note.Masked) > 0 {
		attrs = append(attrs, slog.Any("masked", note.Masked))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	return attrs
}

// StageDeps are what the default stages need beyond the configuration.
type StageDeps struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Holder holds calls that need approval; nil refuses them.
	Holder Holder
	// Recorder writes the audit log; nil records nothing.
	Recorder *Recorder
	// Pinning watches tool definitions; nil turns it off.
	Pinning *Pinning
	// Tasks binds MCP tasks to their sessions; nil gives the policy stage
	// a table of its own that is not told when sessions end.
	Tasks *Tasks
	// Extra stages run innermost, just before forwarding (tests use it).
	Extra []Middleware
}

// DefaultStages is the gateway's pipeline, outermost first: the access
// log, the audit record (which sees the final, masked message), tool
// pinning, policy with approval, and masking.
func DefaultStages(cfg *config.Config, deps StageDeps) []Middleware {
	stages := []Middleware{AccessLog(deps.Logger, deps.Now)}
	if deps.Recorder != nil {
		stages = append(stages, deps.Recorder.Middleware())
	}
	if deps.Pinning != nil {
		stages = append(stages, deps.Pinning.Middleware())
	}
	stages = append(stages,
		Policy(cfg.CompiledPolicy, deps.Holder, deps.Tasks),
		Masking(cfg.Masks, serverProfiles(cfg), cfg.CompiledPolicy),
	)
	return append(stages, deps.Extra...)
}

// serverProfiles maps each server to its masking profile.
func serverProfiles(cfg *config.Config) map[string]string {
	profiles := map[string]string{}
	for name, sc := range cfg.Servers {
		profiles[name] = sc.Mask
		if sc.Mask == "" {
			profiles[name] = mask.DefaultProfileName
		}
	}
	return profiles
}

// ServerMasker returns the masker of each server's profile.
func ServerMasker(cfg *config.Config) func(server string) (*mask.Masker, bool) {
	profiles := serverProfiles(cfg)
	return func(server string) (*mask.Masker, bool) {
		name, ok := profiles[server]
		if !ok {
			name = mask.DefaultProfileName
		}
		return cfg.Masks.Profile(name)
	}
}
