package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Defaults for HandlerOptions.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultKeepAlive    = 15 * time.Second
	// DefaultListLimit bounds GET /v1/approvals when no limit is given.
	DefaultListLimit = 100
	maxListLimit     = 1000
)

// HandlerOptions configure NewHandler. Zero fields get defaults.
type HandlerOptions struct {
	// Logger reports internal errors, which clients see only as "internal
	// error".
	Logger *slog.Logger
	// MaxBodyBytes bounds a decision body (default 1 MiB).
	MaxBodyBytes int64
	// KeepAlive is the interval of SSE comment lines that keep proxies
	// from closing an idle event stream (default 15s).
	KeepAlive time.Duration
	// NewTicker makes the keep-alive ticker; tests replace it. It returns
	// the tick channel and a stop function.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
}

// Identify returns the verified person making an HTTP request, with the
// groups of their verified token; ok is false when there is none.
type Identify func(*http.Request) (Reviewer, bool)

// Handler is the reviewer API. Mount it behind the gateway's bearer-token
// authentication, at /v1/approvals and /v1/approvals/:
//
//	GET  /v1/approvals?state=pending&limit=100   list the requests the caller may see
//	GET  /v1/approvals/{id}                      one request
//	POST /v1/approvals/{id}/decision             {"decision":"approve|deny","comment":"…","edited_args":{…}}
//	GET  /v1/approvals/events                    text/event-stream of the events the caller may see
//
// A caller sees a request when they are its requester or hold one of its
// approver groups. Errors are {"error":{"code":"…","message":"…"}} with
// 400 (bad body or query), 401 (no identity), 403 (separation of duties,
// not an approver), 404 (unknown id, or not visible to the caller), 409
// (not pending, expired, already approved by the caller), 500 (internal;
// the detail goes only to the log).
type Handler struct {
	q        *Queue
	identify Identify
	opts     HandlerOptions
	mux      *http.ServeMux
	done     chan struct{}
	close    sync.Once
}

// NewHandler returns the reviewer API over q.
func NewHandler(q *Queue, identify Identify, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.NewTicker == nil {
		opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	h := &Handler{q: q, identify: identify, opts: opts, mux: http.NewServeMux(), done: make(chan struct{})}
	h.mux.HandleFunc("GET /v1/approvals", h.authed(h.list))
	h.mux.HandleFunc("GET /v1/approvals/events", h.authed(h.events))
	h.mux.HandleFunc("GET /v1/approvals/{id}", h.authed(h.show))
	h.mux.HandleFunc("POST /v1/approvals/{id}/decision", h.authed(h.decide))
	return h
}

// Close ends every open event stream (http.Server.Shutdown waits for
// handlers, and an event stream never ends by itself). Call it from
// http.Server.RegisterOnShutdown. Other requests are unaffected.
func (h *Handler) Close() { h.close.Do(func() { close(h.done) }) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) authed(fn func(http.ResponseWriter, *http.Request, Reviewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := h.identify(r)
		if !ok || who.Subject == "" {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "authentication required: run `bridge login`")
			return
		}
		fn(w, r, who)
	}
}

// CanSee reports whether who may see r: they asked for it, or they hold
// one of its approver groups.
func CanSee(who Reviewer, r *Request) bool {
	return who.Subject == r.Requester.Subject || len(holdsAny(who.Groups, r.Approvers)) > 0
}

// ListResponse is the body of GET /v1/approvals.
type ListResponse struct {
	Approvals []*Request `json:"approvals"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, who Reviewer) {
	var f Filter
	for _, s := range strings.Split(r.URL.Query().Get("state"), ",") {
		switch st := State(strings.TrimSpace(s)); {
		case st == "" || st == "all":
		case st.Valid():
			f.States = append(f.States, st)
		default:
			writeError(w, http.StatusBadRequest, ErrInvalid.Code, fmt.Sprintf("unknown state %q", st))
			return
		}
	}
	limit := DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := parsePositive(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, ErrInvalid.Code, "limit must be a positive integer")
			return
		}
		limit = min(n, maxListLimit)
	}
	rs, err := h.q.List(r.Context(), f)
	if err != nil {
		h.internal(w, "listing approvals", err)
		return
	}
	out := make([]*Request, 0, len(rs))
	for _, req := range slices.Backward(rs) { // newest first
		if CanSee(who, req) {
			out = append(out, req)
			if len(out) == limit {
				break
			}
		}
	}
	slices.Reverse(out) // oldest first within the newest `limit`
	writeJSON(w, http.StatusOK, ListResponse{Approvals: out})
}

func parsePositive(s string) (int, error) {
	n := 0
	if s == "" || len(s) > 9 {
		return 0, errors.New("bad number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad number")
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return 0, errors.New("bad number")
	}
	return n, nil
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, who Reviewer) {
	req, err := h.q.Get(r.Context(), r.PathValue("id"))
	if err == nil && !CanSee(who, req) {
		err = ErrNotFound // do not reveal that it exists
	}
	if err != nil {
		h.fail(w, "reading an approval", err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// DecisionBody is the body of POST /v1/approvals/{id}/decision.
type DecisionBody struct {
	Decision Decision `json:"decision"`
	Comment  string   `json:"comment,omitempty"`
	// EditedArgs, with "approve" only, replace the call's arguments.
	EditedArgs json.RawMessage `json:"edited_args,omitempty"`
}

// ParseDecisionBody parses and checks a decision body strictly: one JSON
// object with no unknown, duplicate or case-variant members (so that
// {"decision":"deny","decision":"approve"} cannot read as either), a decision of "approve" or "deny", a comment of
// at most MaxCommentLen bytes, and edited_args, if any, a JSON object
// given with "approve".
func ParseDecisionBody(data []byte) (DecisionBody, error) {
	var b DecisionBody
	if jsontext.Value(bytes.TrimSpace(data)).Kind() != '{' {
		return DecisionBody{}, ErrInvalid.with("the body must hold one JSON object")
	}
	if err := jsonv2.Unmarshal(data, &b, jsonv2.RejectUnknownMembers(true)); err != nil {
		return DecisionBody{}, ErrInvalid.with("the body must be one JSON object with decision, comment and edited_args, each once")
	}
	switch b.Decision {
	case Approve, Deny:
	default:
		return DecisionBody{}, ErrInvalid.with(`decision must be "approve" or "deny"`)
	}
	if len(b.Comment) > MaxCommentLen {
		return DecisionBody{}, ErrInvalid.with(fmt.Sprintf("the comment is longer than %d bytes", MaxCommentLen))
	}
	if len(b.EditedArgs) > 0 && string(b.EditedArgs) == "null" {
		b.EditedArgs = nil
	}
	if len(b.EditedArgs) > 0 {
		if b.Decision != Approve {
			return DecisionBody{}, ErrInvalid.with("edited_args can only come with an approval")
		}
		if b.EditedArgs[0] != '{' {
			return DecisionBody{}, ErrInvalid.with("edited_args must be a JSON object")
		}
	}
	return b, nil
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request, who Reviewer) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, ErrInvalid.Code, fmt.Sprintf("the body is larger than %d bytes", h.opts.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, ErrInvalid.Code, "could not read the body")
		return
	}
	body, err := ParseDecisionBody(data)
	if err != nil {
		h.fail(w, "", err)
		return
	}
	// A caller who may not see the request learns neither its state nor
	// anything else: only that they may not decide it.
	req, err := h.q.Get(r.Context(), r.PathValue("id"))
	if err == nil && !CanSee(who, req) {
		err = ErrNotApprover
	}
	if err == nil {
		req, err = h.q.Decide(r.Context(), req.ID, who, body.Decision, body.Comment, body.EditedArgs)
	}
	if err != nil {
		h.fail(w, "deciding an approval", err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// events streams the queue's events as server-sent events: "event:" is
// the type, "id:" the sequence number, "data:" the Event JSON. Only events
// of requests the caller may see are sent, judged by the groups they held
// when they connected. The stream ends when the client goes, or when it
// falls too far behind; clients reconnect and re-list.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, who Reviewer) {
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch := h.q.Subscribe(ctx)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 3000\n: connected\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	tick, stop := h.opts.NewTicker(h.opts.KeepAlive)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-tick:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if !CanSee(who, ev.Request) {
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				h.opts.Logger.Error("approval events: encoding", "err", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, data); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// StatusOf maps a queue error to its HTTP status.
func StatusOf(err error) int {
	var e *Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError
	}
	switch e.Code {
	case ErrNotFound.Code:
		return http.StatusNotFound
	case ErrInvalid.Code:
		return http.StatusBadRequest
	case ErrSelfReview.Code, ErrNotApprover.Code:
		return http.StatusForbidden
	default: // not pending, expired, already reviewed, not approved, already executed
		return http.StatusConflict
	}
}

// fail writes err: a refusal as is, anything else as a bare 500.
func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		h.internal(w, what, err)
		return
	}
	writeError(w, StatusOf(err), e.Code, e.Message)
}

func (h *Handler) internal(w http.ResponseWriter, what string, err error) {
	h.opts.Logger.Error("approval API: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
