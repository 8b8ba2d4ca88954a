package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/pins"
	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// PinRule names the pseudo-rule that holds calls to a changed tool.
const PinRule = "tool-pin-changed"

// Pinning watches tools/list answers for tool definitions that changed
// since the gateway first saw them, records and logs each change, and
// holds calls to a changed tool for approval until an admin accepts it.
type Pinning struct {
	store    *pins.Store
	cfg      config.Pinning
	holder   Holder
	recorder *Recorder
	log      *slog.Logger
}

// NewPinning returns the pinning stage.
func NewPinning(store *pins.Store, cfg config.Pinning, holder Holder, recorder *Recorder, log *slog.Logger) *Pinning {
	return &Pinning{store: store, cfg: cfg, holder: holder, recorder: recorder, log: log}
}

// Middleware checks calls and observes tool lists.
func (p *Pinning) Middleware() Middleware {
	return func(next bridge.Filter) bridge.Filter {
		return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
			switch {
			case m.Kind == bridge.KindRequest && x.Direction == bridge.FromClient && m.Method == policy.MethodToolsCall:
				return p.checkCall(ctx, x, m, next)
			case m.Kind == bridge.KindResponse && x.Direction == bridge.FromUpstream && x.Request != nil && x.Request.Method == "tools/list":
				m = p.observe(ctx, x, m)
			}
			return next.Filter(ctx, x, m)
		})
	}
}

func (p *Pinning) checkCall(ctx context.Context, x *bridge.Exchange, m *bridge.Message, next bridge.Filter) (bridge.Verdict, error) {
	tool := CallOf(m).Target
	pin, err := p.store.Get(ctx, x.Session.Server, tool)
	if errors.Is(err, pins.ErrNotFound) || (err == nil && pin.Changed == "") {
		return next.Filter(ctx, x, m)
	}
	if err != nil {
		return bridge.Verdict{}, bridge.Errorf(bridge.CodeUnavailable, "bridge: the gateway cannot check this tool's definition, so it refused the call", err)
	}
	note := noteFrom(ctx)
	note.Decision, note.Rule = policy.Approve.String(), PinRule
	reason := fmt.Sprintf("the definition of %s/%s changed since it was approved (possible rug pull)", x.Session.Server, tool)
	if len(p.cfg.Approvers) == 0 || p.holder == nil {
		return denial(m, PinRule, reason+"; an admin must accept it with `bridge policy pins accept "+x.Session.Server+"/"+tool+"`")
	}
	v, err := p.holder.Hold(ctx, x, m, policy.Decision{Action: policy.Approve, Rule: PinRule, Reason: reason,
		Approval: &policy.ApprovalSpec{Approvers: p.cfg.Approvers, MinApprovals: 1, Timeout: policy.DefaultTimeout, Hold: policy.DefaultHold}})
	if err != nil || v.Forward == nil {
		return v, err
	}
	return next.Filter(ctx, x, v.Forward)
}

// observe records the tools an upstream listed, read strictly; a change
// is logged loudly and audited. An entry the strict decoding cannot read
// is a changed definition: it is withheld from the list, its pin (if the
// tool was pinned) is marked changed, and that is logged and audited. It
// returns the list to pass on. Store failures never block the list:
// pinning is a tripwire, and calls still check the pins.
func (p *Pinning) observe(ctx context.Context, x *bridge.Exchange, m *bridge.Message) *bridge.Message {
	if m.Unreadable {
		p.unreadableList(ctx, x)
		return m
	}
	if m.Result == nil {
		return m
	}
	tools, bad, err := pins.ParseTools(m.Result)
	if err != nil {
		p.log.Error("TOOL LIST UNREADABLE: withheld", "server", x.Session.Server, "reason", err.Error())
		p.audit(ctx, x, "", "tools/list withheld: "+err.Error())
		reply := bridge.NewError(m.ID, bridge.CodeRefused, "bridge: the upstream's tool list could not be read strictly, so the gateway withheld it")
		return reply
	}
	if len(tools) > 0 {
		changed, err := p.store.Observe(ctx, x.Session.Server, tools)
		if err != nil {
			p.log.Error("tool pinning failed", "server", x.Session.Server, "err", err)
		}
		for _, c := range changed {
			p.log.Error("TOOL DEFINITION CHANGED: calls to it are held until an admin accepts it",
				"server", c.Server, "tool", c.Tool, "fingerprint", c.Changed, "accepted_fingerprint", c.Fingerprint)
			p.audit(ctx, x, c.Tool, "fingerprint "+c.Fingerprint+" → "+c.Changed)
		}
	}
	if len(bad) == 0 {
		return m
	}
	withheld := map[int]bool{}
	for _, u := range bad {
		withheld[u.Index] = true
		p.log.Error("TOOL DEFINITION UNREADABLE: withheld from the list", "server", x.Session.Server, "tool", u.Name, "index", u.Index, "reason", u.Reason)
		outcome := fmt.Sprintf("unreadable definition withheld (entry %d): %s", u.Index, u.Reason)
		if u.Name != "" {
			raw := entryAt(m.Result, u.Index)
			if _, err := p.store.MarkUnreadable(ctx, x.Session.Server, u.Name, raw); err != nil {
				p.log.Error("tool pinning failed", "server", x.Session.Server, "err", err)
			}
		}
		p.audit(ctx, x, u.Name, outcome)
	}
	out, err := withoutEntries(m, withheld)
	if err != nil {
		p.log.Error("withholding unreadable tools failed", "server", x.Session.Server, "err", err)
		return bridge.NewError(m.ID, bridge.CodeRefused, "bridge: the upstream's tool list could not be read strictly, so the gateway withheld it")
	}
	return out
}

// unreadableList handles a tools/list answer that the strict decoding
// refused whole (a duplicate or case-variant key anywhere in it): any of
// the server's pinned tools may be what it changed, so every one is marked
// changed, logged and audited, and calls to them are held until an admin
// accepts them.
func (p *Pinning) unreadableList(ctx context.Context, x *bridge.Exchange) {
	all, err := p.store.List(ctx)
	if err != nil {
		p.log.Error("tool pinning failed", "server", x.Session.Server, "err", err)
		return
	}
	for _, pin := range all {
		if pin.Server != x.Session.Server {
			continue
		}
		changed, err := p.store.MarkUnreadable(ctx, pin.Server, pin.Tool, nil)
		if err != nil {
			p.log.Error("tool pinning failed", "server", pin.Server, "err", err)
			continue
		}
		if changed == nil {
			continue // already marked for this reason
		}
		p.log.Error("TOOL LIST UNREADABLE: calls to the server's pinned tools are held until an admin accepts them",
			"server", pin.Server, "tool", pin.Tool)
		p.audit(ctx, x, pin.Tool, "tools/list could not be read unambiguously; the pinned definition may have changed")
	}
}

// audit records a pinning event.
func (p *Pinning) audit(ctx context.Context, x *bridge.Exchange, tool, outcome string) {
	if p.recorder != nil {
		_ = p.recorder.Event(ctx, &audit.Record{Kind: audit.KindToolPinChanged, Session: x.Session.ID, Server: x.Session.Server, Tool: tool,
			Identity: identityOf(x.Session, x.Principal), Outcome: outcome})
	}
}

// entryAt returns the i-th raw entry of result.tools.
func entryAt(result json.RawMessage, i int) []byte {
	var r struct {
		Tools []jsontext.Value `json:"tools"`
	}
	if jsonv2.Unmarshal(result, &r) != nil || i >= len(r.Tools) {
		return nil
	}
	return r.Tools[i]
}

// withoutEntries returns a tools/list response without the withheld
// entries; every other member of the result is kept as it came.
func withoutEntries(m *bridge.Message, withheld map[int]bool) (*bridge.Message, error) {
	var result map[string]jsontext.Value
	if err := jsonv2.Unmarshal(m.Result, &result); err != nil {
		return nil, err
	}
	var tools []jsontext.Value
	if err := jsonv2.Unmarshal(result["tools"], &tools); err != nil {
		return nil, err
	}
	kept := make([]jsontext.Value, 0, len(tools))
	for i, t := range tools {
		if !withheld[i] {
			kept = append(kept, t)
		}
	}
	b, err := jsonv2.Marshal(kept)
	if err != nil {
		return nil, err
	}
	result["tools"] = b
	return bridge.NewResult(m.ID, result)
}

// Handler serves GET /v1/pins and POST /v1/pins/accept to admins.
func (p *Pinning) Handler() http.Handler {
	mux := http.NewServeMux()
	admin := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		id, ok := IdentityFrom(r.Context())
		if !ok {
			writeRPCError(w, http.StatusUnauthorized, bridge.CodeRefused, "authentication required")
			return "", false
		}
		for _, g := range id.Groups {
			if slices.Contains(p.cfg.Admins, g) {
				return id.Email, true
			}
		}
		apiError(w, http.StatusForbidden, "forbidden", "only members of tool_pinning.admins may manage tool pins")
		return "", false
	}
	mux.HandleFunc("GET /v1/pins", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := admin(w, r); !ok {
			return
		}
		list, err := p.store.List(r.Context())
		if err != nil {
			p.log.Error("listing pins", "err", err)
			apiError(w, http.StatusInternalServerError, "internal", "internal error")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"pins": list})
	})
	mux.HandleFunc("POST /v1/pins/accept", func(w http.ResponseWriter, r *http.Request) {
		who, ok := admin(w, r)
		if !ok {
			return
		}
		var body struct {
			Server string `json:"server"`
			Tool   string `json:"tool"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || body.Server == "" || body.Tool == "" {
			apiError(w, http.StatusBadRequest, "invalid", `body must be {"server": "...", "tool": "..."}`)
			return
		}
		pin, err := p.store.Accept(r.Context(), body.Server, body.Tool, who)
		switch {
		case errors.Is(err, pins.ErrNotFound):
			apiError(w, http.StatusNotFound, "not_found", "no pin for "+body.Server+"/"+body.Tool)
		case err != nil && strings.Contains(err.Error(), "no changed definition"):
			apiError(w, http.StatusConflict, "not_changed", err.Error())
		case err != nil:
			p.log.Error("accepting a pin", "err", err)
			apiError(w, http.StatusInternalServerError, "internal", "internal error")
		default:
			p.log.Warn("tool definition accepted", "server", pin.Server, "tool", pin.Tool, "by", who, "fingerprint", pin.Fingerprint)
			if p.recorder != nil {
				_ = p.recorder.Event(r.Context(), &audit.Record{Kind: audit.KindToolPinChanged, Server: pin.Server, Tool: pin.Tool,
					Identity: audit.Identity{Email: who}, Outcome: "accepted " + pin.Fingerprint})
			}
			writeJSON(w, http.StatusOK, pin)
		}
	})
	return mux
}

// apiError writes the API's error body, {"error":{"code","message"}}.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
