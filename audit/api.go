package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The audit API, as served by [NewHandler]. The handler routes full paths, so
// the gateway mounts it as is, behind its bearer-token authentication:
//
//	mux.Handle(audit.APIPrefix, authenticate(audit.NewHandler(log, opts)))
//
// Every route is GET (HEAD too) and answers JSON unless said otherwise:
//
//	GET /v1/audit/records?FILTERS&after=SEQ&limit=N&newest=true
//	    {"records":[…],"more":bool,"next_after":SEQ}. Without newest the
//	    oldest matches after `after` come first, and next_after is the cursor
//	    for the next page; with newest=true the newest `limit` matches, still
//	    in seq order. limit defaults to, and is capped at, MaxLimit.
//	GET /v1/audit/records/{ref}       a seq or an approval id: {"records":[…]}; 404 if unknown
//	GET /v1/audit/sessions/{id}?after=SEQ
//	    the session's records in seq order, paged like /records (at most
//	    MaxSessionRecords per page); 404 if the session has no record
//	GET /v1/audit/export?format=jsonl|csv&FILTERS&after=SEQ&limit=N
//	    the matches streamed as JSON lines (application/x-ndjson, the stored
//	    form of each record) or CSV (text/csv); unbounded unless limit is set
//	GET /v1/audit/verify              [VerifyResponse]; HTTP 200 whether or not the chain verifies
//	GET /v1/audit/head                [HeadResponse]
//	GET /v1/audit/heads               [HeadsResponse]: the stored signed heads, to verify an export locally
//	GET /v1/audit/tail?FILTERS&after=SEQ
//	    text/event-stream: one `event: record` per matching record with
//	    seq > after (default: the current head, so only new records; the
//	    Last-Event-ID header resumes a stream), `data:` the stored form and
//	    `id:` the seq; a `: keep-alive` comment every KeepAlive; an
//	    `event: end` when the log closes. It ends when the client goes.
//
// FILTERS are user, server, tool, decision, session, kind, since and until
// (RFC 3339, or a Go duration such as 24h meaning that long before now),
// each given at most once. An unknown or repeated parameter, or a filter
// [Filter.Validate] rejects, is a 400. Errors are {"error":"…","code":"…"}:
// 401 unauthenticated, 403 not an auditor, 400 bad_request, 404 not_found,
// 405 method_not_allowed, 503 unavailable or busy, 500 corrupt or internal.
const APIPrefix = "/v1/audit/"

// HandlerOptions configure [NewHandler].
type HandlerOptions struct {
	// Identify returns the verified caller of a request; ok false means the
	// request is unauthenticated (401). nil refuses every request.
	Identify func(*http.Request) (subject string, groups []string, ok bool)
	// Auditors reports whether a caller with groups may read the log, for
	// example (*Config).IsAuditor. nil lets nobody read it (403).
	Auditors func(groups []string) bool
	// PublicKeys authenticate signed checkpoints on /verify; nil means the
	// public half of the log's own signing key, if it signs.
	PublicKeys []ed25519.PublicKey
	// Now is the clock relative since/until values count back from; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives one line per read (who read what) and per refusal;
	// nil discards.
	Logger *slog.Logger
	// MaxLimit caps the records one /records page returns; 0 means
	// DefaultMaxLimit.
	MaxLimit int
	// MaxSessionRecords caps one /sessions page; 0 means 10 × MaxLimit.
	MaxSessionRecords int
	// MaxFollowers caps concurrent /tail streams (503 beyond); 0 means 16.
	MaxFollowers int
	// KeepAlive is the interval of the comments that keep an idle /tail
	// stream open through proxies; 0 means 15s.
	KeepAlive time.Duration
	// NewTicker makes the keep-alive ticker; nil means time.NewTicker.
	NewTicker func(time.Duration) (c <-chan time.Time, stop func())
}

// DefaultMaxLimit is the default cap on records per /records page.
const DefaultMaxLimit = 1000

// maxParamLen bounds every query parameter's value.
const maxParamLen = 512

// RecordsResponse is the body of /records, /records/{ref} and
// /sessions/{id}.
type RecordsResponse struct {
	Records []Record `json:"records"`
	// More says more records match beyond this page.
	More bool `json:"more"`
	// NextAfter is the `after` cursor of the next page, when More and the
	// page was taken oldest first.
	NextAfter uint64 `json:"next_after,omitempty"`
}

// HeadResponse is the body of /head.
type HeadResponse struct {
	Seq        uint64      `json:"seq"`
	Hash       string      `json:"hash,omitempty"`
	Root       string      `json:"root,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// PublicKey is the PEM public key the log is signed with, for an
	// auditor to pin on first use; it proves nothing by itself.
	PublicKey string `json:"public_key,omitempty"`
}

// HeadsResponse is the body of /heads: every stored signed head, by seq,
// with retention anchors' frontiers, so a client can verify an export
// locally.
type HeadsResponse struct {
	Heads []Checkpoint `json:"heads"`
}

// VerifyResponse is the body of /verify: the [VerifyReport] and whether
// the log verified.
type VerifyResponse struct {
	OK bool `json:"ok"`
	// KeyIDs name the public keys checkpoints were authenticated with.
	KeyIDs []string `json:"key_ids,omitempty"`
	VerifyReport
}

// APIError is the body of every error response.
type APIError struct {
	Message string `json:"error"`
	Code    string `json:"code"`
}

func (e *APIError) Error() string { return e.Message }

// PublicKey returns the public half of the log's signing key, or nil when
// the log does not sign.
func (l *Log) PublicKey() ed25519.PublicKey {
	if l.signer == nil {
		return nil
	}
	return l.signer.Public().(ed25519.PublicKey)
}

type handler struct {
	log        *Log
	opts       HandlerOptions
	now        func() time.Time
	logger     *slog.Logger
	newTicker  func(time.Duration) (<-chan time.Time, func())
	mux        *http.ServeMux
	followers  chan struct{} // a slot per running /tail
	verifying  chan struct{} // one /verify at a time
	maxLimit   int
	maxSession int
	keepAlive  time.Duration
}

// NewHandler returns the audit API over log (see [APIPrefix] for the
// routes). Only callers that Identify names and Auditors accepts may read.
func NewHandler(log *Log, opts HandlerOptions) http.Handler {
	h := &handler{
		log:        log,
		opts:       opts,
		now:        opts.Now,
		logger:     opts.Logger,
		newTicker:  opts.NewTicker,
		maxLimit:   opts.MaxLimit,
		maxSession: opts.MaxSessionRecords,
		keepAlive:  opts.KeepAlive,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.newTicker == nil {
		h.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if h.maxLimit <= 0 {
		h.maxLimit = DefaultMaxLimit
	}
	if h.maxSession <= 0 {
		h.maxSession = 10 * h.maxLimit
	}
	if h.keepAlive <= 0 {
		h.keepAlive = 15 * time.Second
	}
	n := opts.MaxFollowers
	if n <= 0 {
		n = 16
	}
	h.followers = make(chan struct{}, n)
	h.verifying = make(chan struct{}, 1)

	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /v1/audit/records", h.records)
	h.mux.HandleFunc("GET /v1/audit/records/{ref}", h.record)
	h.mux.HandleFunc("GET /v1/audit/sessions/{id}", h.session)
	h.mux.HandleFunc("GET /v1/audit/export", h.export)
	h.mux.HandleFunc("GET /v1/audit/verify", h.verify)
	h.mux.HandleFunc("GET /v1/audit/head", h.head)
	h.mux.HandleFunc("GET /v1/audit/heads", h.heads)
	h.mux.HandleFunc("GET /v1/audit/tail", h.tail)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such audit API route")
	})
	return h
}

// ServeHTTP authenticates and authorizes before routing, so a caller who
// may not read the log learns nothing about it, not even its routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		subject string
		groups  []string
		ok      bool
	)
	if h.opts.Identify != nil {
		subject, groups, ok = h.opts.Identify(r)
	}
	if !ok {
		writeAPIError(w, http.StatusUnauthorized, "unauthenticated", "authentication required: run `bridge login`")
		return
	}
	if h.opts.Auditors == nil || !h.opts.Auditors(groups) {
		h.logger.Warn("audit API: access denied", "subject", subject, "path", r.URL.Path)
		writeAPIError(w, http.StatusForbidden, "forbidden",
			"reading the audit log requires membership of an auditors group (audit.auditors in the gateway configuration)")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeAPIError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the audit API is read-only: use GET")
		return
	}
	h.logger.Info("audit API: read", "subject", subject, "path", r.URL.Path, "query", truncate(r.URL.RawQuery, 512))
	h.mux.ServeHTTP(w, r)
}

// query parses the request's query string strictly: a malformed one (bad
// escapes, semicolons) is a 400 rather than silently dropped pairs.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	return q, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, &APIError{Message: msg, Code: code})
}

// fail answers an error from the log or its store. Internal detail goes to
// the logger, never to the client.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var cre *CorruptRecordError
	var ae *APIError
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	case errors.As(err, &ae):
		status := http.StatusBadRequest
		if ae.Code == "not_found" {
			status = http.StatusNotFound
		}
		writeAPIError(w, status, ae.Code, ae.Message)
	case errors.Is(err, ErrNotFound):
		writeAPIError(w, http.StatusNotFound, "not_found", "not found")
	case errors.As(err, &cre):
		h.logger.Error("audit API: corrupt record", "seq", cre.Seq, "err", err)
		writeAPIError(w, http.StatusInternalServerError, "corrupt",
			fmt.Sprintf("record %d cannot be read: the log is damaged; run `bridge audit verify`", cre.Seq))
	case errors.Is(err, ErrClosed):
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "the audit log is closed (the gateway is shutting down)")
	default:
		h.logger.Error("audit API: read failed", "path", r.URL.Path, "err", err)
		writeAPIError(w, http.StatusInternalServerError, "internal", "internal error reading the audit log")
	}
}

func badRequest(format string, args ...any) error {
	return &APIError{Message: fmt.Sprintf(format, args...), Code: "bad_request"}
}

// Query parameters each route accepts, besides the filters.
var filterParams = []string{"user", "server", "tool", "decision", "session", "kind", "since", "until", "after"}

// ParseFilterQuery parses the filter parameters of an audit API request:
// FILTERS and after, plus those named in extra ("limit" and "newest" are
// parsed into the filter; others, such as "format", are left to the
// caller). An unknown or repeated parameter, an overlong value, or a
// filter Validate rejects is an error. A limit above maxLimit is lowered to
// it; no limit is maxLimit (0 means no cap).
func ParseFilterQuery(q url.Values, now time.Time, maxLimit int, extra ...string) (Filter, error) {
	var f Filter
	for k, vs := range q {
		known := false
		for _, p := range filterParams {
			known = known || k == p
		}
		for _, p := range extra {
			known = known || k == p
		}
		if !known {
			return Filter{}, badRequest("unknown query parameter %q", truncate(k, 64))
		}
		if len(vs) != 1 {
			return Filter{}, badRequest("query parameter %q given %d times", k, len(vs))
		}
		if len(vs[0]) > maxParamLen {
			return Filter{}, badRequest("query parameter %q is longer than %d bytes", k, maxParamLen)
		}
	}
	f.User, f.Server, f.Tool = q.Get("user"), q.Get("server"), q.Get("tool")
	f.Decision, f.Session, f.Kind = q.Get("decision"), q.Get("session"), Kind(q.Get("kind"))
	var err error
	if f.Since, err = parseWhen(q.Get("since"), now); err != nil {
		return Filter{}, badRequest("since: %v", err)
	}
	if f.Until, err = parseWhen(q.Get("until"), now); err != nil {
		return Filter{}, badRequest("until: %v", err)
	}
	if s := q.Get("after"); s != "" {
		if f.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			return Filter{}, badRequest("after: want a record seq, not %q", truncate(s, 64))
		}
	}
	f.Limit = maxLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return Filter{}, badRequest("limit: want a non-negative number, not %q", truncate(s, 64))
		}
		if n > 0 && (maxLimit == 0 || n < maxLimit) {
			f.Limit = n
		}
	}
	if s := q.Get("newest"); s != "" {
		if f.Newest, err = strconv.ParseBool(s); err != nil {
			return Filter{}, badRequest("newest: want true or false, not %q", truncate(s, 64))
		}
	}
	if err := f.Validate(); err != nil {
		return Filter{}, badRequest("%s", strings.TrimPrefix(err.Error(), "audit: "))
	}
	return f, nil
}

// parseWhen parses an RFC 3339 time or a positive duration counted back
// from now; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-03-14T09:00:00Z) or a duration such as 24h, not %q", truncate(s, 64))
	}
	return now.Add(-d), nil
}

// page queries one page of at most f.Limit records (f.Limit > 0) and says
// whether more match.
func page(ctx context.Context, s Store, f Filter) (*RecordsResponse, error) {
	limit := f.Limit
	f.Limit++
	recs, err := Query(ctx, s, f)
	if err != nil {
		return nil, err
	}
	resp := &RecordsResponse{Records: recs}
	if len(recs) > limit {
		resp.More = true
		if f.Newest {
			resp.Records = recs[1:]
		} else {
			resp.Records = recs[:limit]
			resp.NextAfter = resp.Records[limit-1].Seq
		}
	}
	return resp, nil
}

func (h *handler) records(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := ParseFilterQuery(q, h.now(), h.maxLimit, "limit", "newest")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := page(r.Context(), h.log.store, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) record(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if len(ref) > maxParamLen {
		h.fail(w, r, badRequest("reference longer than %d bytes", maxParamLen))
		return
	}
	var recs []Record
	var err error
	if seq, perr := strconv.ParseUint(ref, 10, 64); perr == nil && seq == 0 {
		err = ErrNotFound // Get would read seq 0 as "no upper bound"
	} else {
		recs, err = Lookup(r.Context(), h.log.store, ref)
	}
	if errors.Is(err, ErrNotFound) {
		err = &APIError{Code: "not_found", Message: fmt.Sprintf("no record with seq or approval id %q", ref)}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, &RecordsResponse{Records: recs})
}

func (h *handler) session(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > maxParamLen {
		h.fail(w, r, badRequest("session id longer than %d bytes", maxParamLen))
		return
	}
	q, err := query(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for k := range q {
		if k != "after" {
			h.fail(w, r, badRequest("unknown query parameter %q: a session takes only after", truncate(k, 64)))
			return
		}
	}
	f, err := ParseFilterQuery(q, h.now(), h.maxSession)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f.Session = id
	resp, err := page(r.Context(), h.log.store, f)
	if err == nil && len(resp.Records) == 0 && f.After == 0 {
		err = &APIError{Code: "not_found", Message: fmt.Sprintf("no session %q in the audit log", id)}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) head(w http.ResponseWriter, r *http.Request) {
	hd := h.log.Head()
	resp := &HeadResponse{Seq: hd.Seq, Hash: hd.Hash, Root: hd.Root, Checkpoint: hd.Checkpoint}
	if pub := h.log.PublicKey(); pub != nil {
		if b, err := MarshalPublicKeyPEM(pub); err == nil {
			resp.PublicKey = string(b)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) heads(w http.ResponseWriter, r *http.Request) {
	cps, err := h.log.store.Checkpoints(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if cps == nil {
		cps = []Checkpoint{}
	}
	writeJSON(w, http.StatusOK, &HeadsResponse{Heads: cps})
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		h.fail(w, r, badRequest("verify takes no parameters"))
		return
	}
	// A walk of the whole chain is expensive: run one at a time.
	select {
	case h.verifying <- struct{}{}:
		defer func() { <-h.verifying }()
	case <-r.Context().Done():
		return
	}
	keys := h.opts.PublicKeys
	if keys == nil {
		if pub := h.log.PublicKey(); pub != nil {
			keys = []ed25519.PublicKey{pub}
		}
	}
	rep, err := VerifyWith(r.Context(), h.log.store, VerifyOptions{PublicKeys: keys})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := &VerifyResponse{OK: rep.OK(), VerifyReport: *rep}
	for _, k := range keys {
		resp.KeyIDs = append(resp.KeyIDs, KeyID(k))
	}
	if !resp.OK {
		h.logger.Error("audit API: the audit log does not verify", "seq", rep.Break.Seq, "reason", rep.Break.Reason)
	}
	writeJSON(w, http.StatusOK, resp)
}

// Export formats and their content types.
var exportTypes = map[string]string{
	"jsonl": "application/x-ndjson",
	"csv":   "text/csv; charset=utf-8",
}

func (h *handler) export(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := ParseFilterQuery(q, h.now(), 0, "limit", "newest", "format")
	if err == nil && f.Newest && (f.Limit == 0 || f.Limit > h.maxLimit) {
		err = badRequest("newest=true needs a limit of at most %d", h.maxLimit)
	}
	format := q.Get("format")
	if _, ok := exportTypes[format]; err == nil && !ok {
		err = badRequest("format: want jsonl or csv, not %q", truncate(format, 64))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Read the first record before committing to a 200, so that a store
	// that cannot be read at all is still an HTTP error.
	if _, _, err := h.log.store.First(r.Context()); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", exportTypes[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bridge-audit.%s"`, format))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := Export(r.Context(), h.log.store, f, format, w); err != nil && r.Context().Err() == nil {
		// The status is sent: abort the response so the client sees a
		// truncated body rather than a short export that looks complete.
		h.logger.Error("audit API: export failed part-way", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// exportBatch is how many records Export renders at a time.
const exportBatch = 256

// Export writes the records of s that match f to w as "jsonl" ([WriteJSONL])
// or "csv" ([WriteCSV], one header row), streaming: it holds at most a batch
// of records, or f.Limit of them when f.Newest. It returns the number of
// records written.
func Export(ctx context.Context, s Store, f Filter, format string, w io.Writer) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	var header []byte
	switch format {
	case "jsonl":
	case "csv":
		var hb bytes.Buffer
		if err := WriteCSV(&hb, nil); err != nil {
			return 0, err
		}
		header = hb.Bytes()
		if _, err := w.Write(header); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("audit: export format %q: want jsonl or csv", format)
	}
	n := 0
	var buf bytes.Buffer
	flush := func(recs []Record) error {
		if format == "jsonl" {
			if err := WriteJSONL(w, recs); err != nil {
				return err
			}
		} else {
			buf.Reset()
			if err := WriteCSV(&buf, recs); err != nil {
				return err
			}
			if _, err := w.Write(buf.Bytes()[len(header):]); err != nil {
				return err
			}
		}
		n += len(recs)
		return nil
	}
	if f.Newest && f.Limit > 0 {
		recs, err := Query(ctx, s, f)
		if err != nil {
			return 0, err
		}
		return n, flush(recs)
	}
	batch := make([]Record, 0, exportBatch)
	stop := errors.New("limit reached")
	err := s.Range(ctx, f.After+1, 0, func(r Record) error {
		if !f.Match(&r) {
			return nil
		}
		batch = append(batch, r)
		if len(batch) == exportBatch {
			if err := flush(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if f.Limit > 0 && n+len(batch) >= f.Limit {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return n, err
	}
	if len(batch) > 0 {
		return n, flush(batch)
	}
	return n, nil
}

func (h *handler) tail(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := ParseFilterQuery(q, h.now(), 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	after := h.log.Head().Seq
	switch id := r.Header.Get("Last-Event-ID"); {
	case q.Has("after"):
		after = f.After
	case id != "":
		if after, err = strconv.ParseUint(id, 10, 64); err != nil {
			h.fail(w, r, badRequest("Last-Event-ID: want a record seq"))
			return
		}
	}
	f.After = 0
	select {
	case h.followers <- struct{}{}:
		defer func() { <-h.followers }()
	default:
		writeAPIError(w, http.StatusServiceUnavailable, "busy", "too many audit tails are open; try again later")
		return
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprintf(w, ": following the audit log after seq %d\n\n", after); err != nil || rc.Flush() != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	recs := make(chan Record, 64)
	done := make(chan error, 1)
	go func() {
		done <- h.log.Follow(ctx, after, func(rec Record) error {
			if !f.Match(&rec) {
				return nil
			}
			select {
			case recs <- rec:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	tick, stopTick := h.newTicker(h.keepAlive)
	defer stopTick()

	send := func(rec Record) bool {
		b, err := EncodeRecord(&rec)
		if err != nil {
			h.logger.Error("audit API: tail: encode", "seq", rec.Seq, "err", err)
			return false
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: record\ndata: %s\n\n", rec.Seq, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case rec := <-recs:
			if !send(rec) {
				cancel()
				<-done
				return
			}
		case <-tick:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				cancel()
				<-done
				return
			}
		case err := <-done:
			// Follow has returned, so nothing more is sent on recs.
			for len(recs) > 0 {
				if !send(<-recs) {
					return
				}
			}
			if r.Context().Err() != nil {
				return
			}
			reason := "the audit log closed"
			if !errors.Is(err, ErrClosed) {
				h.logger.Error("audit API: tail failed", "err", err)
				reason = "the audit log could not be read"
			}
			b, _ := json.Marshal(map[string]string{"reason": reason})
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			_ = rc.Flush()
			return
		}
	}
}
