package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiWorld is an audit API over a MemStore-backed log.
type apiWorld struct {
	t    *testing.T
	log  *Log
	srv  *httptest.Server
	tick chan time.Time
	now  time.Time
}

// testIdentify trusts two test headers, as the gateway's authentication
// would trust a verified token.
func testIdentify(r *http.Request) (string, []string, bool) {
	sub := r.Header.Get("X-Test-Subject")
	if sub == "" {
		return "", nil, false
	}
	return sub, strings.Split(r.Header.Get("X-Test-Groups"), ","), true
}

func newAPIWorld(t *testing.T, store Store, logOpts Options, hopts HandlerOptions) *apiWorld {
	t.Helper()
	if logOpts.Now == nil {
		logOpts.Now = testClock()
	}
	l, err := Open(store, logOpts)
	if err != nil {
		t.Fatal(err)
	}
	w := &apiWorld{t: t, log: l, tick: make(chan time.Time), now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	cfg := &Config{Auditors: []string{"auditors"}}
	hopts.Identify = testIdentify
	hopts.Auditors = cfg.IsAuditor
	if hopts.Now == nil {
		hopts.Now = func() time.Time { return w.now }
	}
	hopts.NewTicker = func(time.Duration) (<-chan time.Time, func()) { return w.tick, func() {} }
	w.srv = httptest.NewServer(NewHandler(l, hopts))
	t.Cleanup(func() {
		w.srv.Close()
		l.Close()
	})
	return w
}

// apiRecord is a record with the fields the filters look at.
func apiRecord(i int) *Record {
	r := sampleRecord(i)
	if i%2 == 0 {
		r.Identity = Identity{Subject: "00u2", Email: "Bob@example.com", Groups: []string{"ops"}}
		r.Server = "warehouse"
	}
	r.Decision = []string{DecisionAllow, DecisionDeny, DecisionApprove}[i%3]
	if i%5 == 0 {
		r.Kind, r.ApprovalID = KindApprovalCreated, fmt.Sprintf("apr-%d", i/5%2)
	}
	return r
}

func (w *apiWorld) appendN(n int) {
	w.t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := w.log.Append(context.Background(), apiRecord(i)); err != nil {
			w.t.Fatal(err)
		}
	}
}

// get performs a request as subject in groups ("" subject: anonymous).
func (w *apiWorld) do(method, path, subject, groups string) *http.Response {
	w.t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if subject != "" {
		req.Header.Set("X-Test-Subject", subject)
		req.Header.Set("X-Test-Groups", groups)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp
}

// getJSON GETs path as an auditor, checks the status and decodes the body.
func (w *apiWorld) getJSON(path string, wantStatus int, v any) {
	w.t.Helper()
	// Decode into a fresh value, so fields left out stay zero.
	rv := reflect.ValueOf(v).Elem()
	rv.Set(reflect.Zero(rv.Type()))
	resp := w.do(http.MethodGet, path, "00u-audit", "engineering,auditors")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		w.t.Fatalf("GET %s: HTTP %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		w.t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		w.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func TestAPIAccessControl(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(3)
	for _, tc := range []struct {
		name, method, path, subject, groups string
		status                              int
		code                                string
	}{
		{"anonymous", "GET", "/v1/audit/records", "", "", 401, "unauthenticated"},
		{"not an auditor", "GET", "/v1/audit/records", "00u1", "engineering", 403, "forbidden"},
		{"no groups", "GET", "/v1/audit/head", "00u1", "", 403, "forbidden"},
		{"group name is exact", "GET", "/v1/audit/head", "00u1", "Auditors", 403, "forbidden"},
		{"anonymous, unknown route", "GET", "/v1/audit/nope", "", "", 401, "unauthenticated"},
		{"auditor, unknown route", "GET", "/v1/audit/nope", "00u9", "auditors", 404, "not_found"},
		{"auditor, write", "POST", "/v1/audit/records", "00u9", "auditors", 405, "method_not_allowed"},
		{"auditor, delete", "DELETE", "/v1/audit/records/1", "00u9", "auditors", 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := w.do(tc.method, tc.path, tc.subject, tc.groups)
			defer resp.Body.Close()
			var e APIError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("HTTP %d %+v, want %d %s", resp.StatusCode, e, tc.status, tc.code)
			}
		})
	}
	var ok RecordsResponse
	w.getJSON("/v1/audit/records", 200, &ok)
	if len(ok.Records) != 3 {
		t.Fatalf("auditor got %d records", len(ok.Records))
	}
}

func TestAPIAccessControlFailsClosed(t *testing.T) {
	l, err := Open(NewMemStore(), Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for name, opts := range map[string]HandlerOptions{
		"no Identify": {Auditors: func([]string) bool { return true }},
		"no Auditors": {Identify: testIdentify},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/audit/head", nil)
		req.Header.Set("X-Test-Subject", "root")
		req.Header.Set("X-Test-Groups", "auditors")
		NewHandler(l, opts).ServeHTTP(rec, req)
		if rec.Code != 401 && rec.Code != 403 {
			t.Errorf("%s: HTTP %d, want a refusal", name, rec.Code)
		}
	}
}

func TestAPIRecordsFilters(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(30)
	cases := []struct {
		query string
		want  func(r *Record) bool
	}{
		{"", func(*Record) bool { return true }},
		{"user=bob@EXAMPLE.com", func(r *Record) bool { return r.Identity.Subject == "00u2" }},
		{"user=00u1&server=github", func(r *Record) bool { return r.Identity.Subject == "00u1" }},
		{"server=warehouse&decision=deny", func(r *Record) bool { return r.Server == "warehouse" && r.Decision == "deny" }},
		{"tool=tool_0007", func(r *Record) bool { return r.Tool == "tool_0007" }},
		{"session=s-1&kind=request", func(r *Record) bool { return r.Session == "s-1" && r.Kind == KindRequest }},
		{"after=25", func(r *Record) bool { return r.Seq > 25 }},
		{"user=nobody", func(*Record) bool { return false }},
	}
	all, _ := w.log.Query(context.Background(), Filter{})
	for _, tc := range cases {
		var got RecordsResponse
		w.getJSON("/v1/audit/records?"+tc.query, 200, &got)
		var want []uint64
		for i := range all {
			if tc.want(&all[i]) {
				want = append(want, all[i].Seq)
			}
		}
		if fmt.Sprint(seqsOf(got.Records)) != fmt.Sprint(want) || got.More {
			t.Errorf("%q: got %v (more %v), want %v", tc.query, seqsOf(got.Records), got.More, want)
		}
		if got.Records == nil {
			t.Errorf("%q: records is null, want []", tc.query)
		}
	}
	// Records come back exactly as stored, hash included.
	var one RecordsResponse
	w.getJSON("/v1/audit/records?tool=tool_0003", 200, &one)
	if h, _ := one.Records[0].ComputeHash(); h != one.Records[0].Hash || h == "" {
		t.Fatal("record over the API does not match its hash")
	}
}

func TestAPIRecordsTimeFilters(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(10) // testClock: record n at base + n ms (one reading per commit)
	all, _ := w.log.Query(context.Background(), Filter{})
	since := all[3].Time.Format(time.RFC3339Nano)
	until := all[6].Time.Format(time.RFC3339Nano)
	var got RecordsResponse
	w.getJSON("/v1/audit/records?since="+url.QueryEscape(since)+"&until="+url.QueryEscape(until), 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[4 5 6]" {
		t.Fatalf("since/until: %v", seqsOf(got.Records))
	}
	// A duration counts back from the injected clock.
	w.now = all[7].Time.Add(time.Millisecond)
	w.getJSON("/v1/audit/records?since=1ms", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[8 9 10]" {
		t.Fatalf("since=1ms: %v", seqsOf(got.Records))
	}
}

func TestAPIRecordsPaging(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{MaxLimit: 4})
	w.appendN(10)
	var got RecordsResponse
	w.getJSON("/v1/audit/records?limit=3", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[1 2 3]" || !got.More || got.NextAfter != 3 {
		t.Fatalf("page 1: %v more=%v next=%d", seqsOf(got.Records), got.More, got.NextAfter)
	}
	w.getJSON("/v1/audit/records?limit=3&after=9", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[10]" || got.More || got.NextAfter != 0 {
		t.Fatalf("last page: %v more=%v next=%d", seqsOf(got.Records), got.More, got.NextAfter)
	}
	// Above MaxLimit, and absent, is MaxLimit.
	for _, q := range []string{"limit=1000000", "", "limit=0"} {
		w.getJSON("/v1/audit/records?"+q, 200, &got)
		if len(got.Records) != 4 || !got.More {
			t.Fatalf("%q: %d records, more=%v; want the cap of 4", q, len(got.Records), got.More)
		}
	}
	w.getJSON("/v1/audit/records?limit=3&newest=true", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[8 9 10]" || !got.More || got.NextAfter != 0 {
		t.Fatalf("newest: %v more=%v next=%d", seqsOf(got.Records), got.More, got.NextAfter)
	}
	w.getJSON("/v1/audit/records?limit=4&newest=1&user=alice@example.com", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[3 5 7 9]" || !got.More {
		t.Fatalf("newest, filtered: %v more=%v", seqsOf(got.Records), got.More)
	}
}

func TestAPIBadQueries(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(3)
	for _, q := range []string{
		"/v1/audit/records?usr=alice",
		"/v1/audit/records?user=a&user=b",
		"/v1/audit/records?since=yesterday",
		"/v1/audit/records?since=-5m",
		"/v1/audit/records?since=2026-03-14T10:00:00Z&until=2026-03-14T09:00:00Z",
		"/v1/audit/records?kind=bogus",
		"/v1/audit/records?limit=-1",
		"/v1/audit/records?limit=ten",
		"/v1/audit/records?after=-1",
		"/v1/audit/records?after=99999999999999999999999",
		"/v1/audit/records?newest=maybe",
		"/v1/audit/records?format=csv",
		"/v1/audit/records?user=" + strings.Repeat("a", 600),
		"/v1/audit/records?%zz=1",
		"/v1/audit/records?user=a;b",
		"/v1/audit/sessions/s-1?user=alice",
		"/v1/audit/export",
		"/v1/audit/export?format=xml",
		"/v1/audit/export?format=csv&newest=true",
		"/v1/audit/verify?deep=1",
		"/v1/audit/tail?limit=5",
		"/v1/audit/records/" + strings.Repeat("9", 600),
	} {
		var e APIError
		w.getJSON(q, 400, &e)
		if e.Code != "bad_request" || e.Message == "" {
			t.Errorf("%s: %+v", q, e)
		}
	}
}

func TestAPIRecordByRef(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(20)
	var got RecordsResponse
	w.getJSON("/v1/audit/records/7", 200, &got)
	if fmt.Sprint(seqsOf(got.Records)) != "[7]" {
		t.Fatalf("seq 7: %v", seqsOf(got.Records))
	}
	w.getJSON("/v1/audit/records/apr-1", 200, &got) // i = 5, 15
	if fmt.Sprint(seqsOf(got.Records)) != "[5 15]" {
		t.Fatalf("apr-1: %v", seqsOf(got.Records))
	}
	for _, ref := range []string{"21", "0", "apr-9", "%E2%80%AE"} {
		var e APIError
		w.getJSON("/v1/audit/records/"+ref, 404, &e)
		if e.Code != "not_found" {
			t.Errorf("%s: %+v", ref, e)
		}
	}
}

func TestAPISession(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{MaxSessionRecords: 3})
	w.appendN(20)
	var got RecordsResponse
	w.getJSON("/v1/audit/sessions/s-2", 200, &got) // 2, 5, 8, 11, 14, 17, 20
	if fmt.Sprint(seqsOf(got.Records)) != "[2 5 8]" || !got.More || got.NextAfter != 8 {
		t.Fatalf("page 1: %v more=%v next=%d", seqsOf(got.Records), got.More, got.NextAfter)
	}
	var all []uint64
	for after := uint64(0); ; {
		w.getJSON(fmt.Sprintf("/v1/audit/sessions/s-2?after=%d", after), 200, &got)
		all = append(all, seqsOf(got.Records)...)
		if !got.More {
			break
		}
		after = got.NextAfter
	}
	if fmt.Sprint(all) != "[2 5 8 11 14 17 20]" {
		t.Fatalf("all pages: %v", all)
	}
	var e APIError
	w.getJSON("/v1/audit/sessions/no-such-session", 404, &e)
	if e.Code != "not_found" || !strings.Contains(e.Message, "no-such-session") {
		t.Fatalf("unknown session: %+v", e)
	}
}

func TestAPIExport(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(600) // more than two export batches
	want, _ := w.log.Query(context.Background(), Filter{User: "00u1"})

	resp := w.do("GET", "/v1/audit/export?format=jsonl&user=00u1", "a", "auditors")
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		r, err := DecodeRecord(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != want[n].Seq || r.Hash != want[n].Hash {
			t.Fatalf("line %d: seq %d, want %d", n, r.Seq, want[n].Seq)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("jsonl: %d lines, want %d", n, len(want))
	}

	resp2 := w.do("GET", "/v1/audit/export?format=csv&after=10", "a", "auditors")
	defer resp2.Body.Close()
	if resp2.StatusCode != 200 || resp2.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: HTTP %d %s", resp2.StatusCode, resp2.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(resp2.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 591 || rows[0][0] != "seq" || rows[1][0] != "11" || rows[590][0] != "600" {
		t.Fatalf("csv: %d rows, first %v", len(rows), rows[0][:2])
	}
	for i, row := range rows[1:] {
		if row[0] == "seq" {
			t.Fatalf("header repeated at row %d", i+1)
		}
	}

	var buf bytes.Buffer
	if n, err := Export(context.Background(), w.log.Store(), Filter{Limit: 5, Newest: true}, "jsonl", &buf); err != nil || n != 5 {
		t.Fatalf("Export newest: %d, %v", n, err)
	}
	if n, err := Export(context.Background(), w.log.Store(), Filter{Limit: 300}, "csv", &buf); err != nil || n != 300 {
		t.Fatalf("Export limit: %d, %v", n, err)
	}
}

// brokenStore fails reads: a corrupt record at seq, or any error.
type brokenStore struct {
	*MemStore
	mu         sync.Mutex
	corruptSeq uint64
	err        error
}

func (b *brokenStore) set(corruptSeq uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.corruptSeq, b.err = corruptSeq, err
}

func (b *brokenStore) Range(ctx context.Context, from, to uint64, fn func(Record) error) error {
	b.mu.Lock()
	corruptSeq, err := b.corruptSeq, b.err
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.MemStore.Range(ctx, from, to, func(r Record) error {
		if r.Seq == corruptSeq {
			return &CorruptRecordError{Seq: r.Seq, Err: errors.New("invalid character")}
		}
		return fn(r)
	})
}

func TestAPIStoreErrorsAreNotLeaked(t *testing.T) {
	bs := &brokenStore{MemStore: NewMemStore()}
	w := newAPIWorld(t, bs, Options{}, HandlerOptions{})
	w.appendN(5)
	bs.set(3, nil)
	var e APIError
	w.getJSON("/v1/audit/records", 500, &e)
	if e.Code != "corrupt" || !strings.Contains(e.Message, "record 3") {
		t.Fatalf("corrupt: %+v", e)
	}
	// An export that breaks after its status was sent is cut off, so it
	// cannot pass for a complete one.
	for _, format := range []string{"jsonl", "csv"} {
		req, _ := http.NewRequest("GET", w.srv.URL+"/v1/audit/export?format="+format, nil)
		req.Header.Set("X-Test-Subject", "a")
		req.Header.Set("X-Test-Groups", "auditors")
		resp, err := w.srv.Client().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatalf("%s: a broken export ended cleanly", format)
		}
	}
	bs.set(0, errors.New("open /var/lib/bridge/secret-path.db: input/output error"))
	w.getJSON("/v1/audit/records", 500, &e)
	if e.Code != "internal" || strings.Contains(e.Message, "secret-path") {
		t.Fatalf("internal: %+v", e)
	}
}

func TestAPIVerifyAndHead(t *testing.T) {
	key := testKey(t, 7)
	store := &tamperedStore{MemStore: NewMemStore()}
	w := newAPIWorld(t, store, Options{Signer: key, SignEvery: 5}, HandlerOptions{})
	w.appendN(12)

	var head HeadResponse
	w.getJSON("/v1/audit/head", 200, &head)
	if head.Seq != 12 || head.Hash == "" || head.Checkpoint == nil || head.Checkpoint.Seq != 10 {
		t.Fatalf("head: %+v", head)
	}
	if err := head.Checkpoint.VerifySignature(w.log.PublicKey()); err != nil {
		t.Fatal(err)
	}

	var rep VerifyResponse
	w.getJSON("/v1/audit/verify", 200, &rep)
	if !rep.OK || !rep.Signed || rep.SignedThrough != 11 || rep.Records != 12 || len(rep.KeyIDs) != 1 {
		t.Fatalf("clean log: %+v", rep)
	}

	store.editSeq = 4
	w.getJSON("/v1/audit/verify", 200, &rep)
	if rep.OK || rep.Break == nil || rep.Break.Seq != 4 || rep.Break.Reason != BreakEdited {
		t.Fatalf("edited log: %+v", rep)
	}
}

// tamperedStore serves record editSeq edited, as a disk edit would.
type tamperedStore struct {
	*MemStore
	editSeq uint64
}

func (s *tamperedStore) Range(ctx context.Context, from, to uint64, fn func(Record) error) error {
	return s.MemStore.Range(ctx, from, to, func(r Record) error {
		if r.Seq == s.editSeq {
			r.Tool = "innocent_tool"
		}
		return fn(r)
	})
}

func TestAPIVerifyUnsignedLog(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(3)
	var rep VerifyResponse
	w.getJSON("/v1/audit/verify", 200, &rep)
	if !rep.OK || rep.Signed || rep.KeyIDs != nil {
		t.Fatalf("%+v", rep)
	}
	var head HeadResponse
	w.getJSON("/v1/audit/head", 200, &head)
	if head.Seq != 3 || head.Checkpoint != nil {
		t.Fatalf("%+v", head)
	}
}

// sseEvent is one server-sent event, or a comment.
type sseEvent struct {
	comment, id, event, data string
}

func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev
		case strings.HasPrefix(line, ": "):
			ev.comment = line[2:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func (w *apiWorld) openTail(ctx context.Context, path string, header http.Header) (*http.Response, *bufio.Reader) {
	w.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+path, nil)
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("X-Test-Subject", "00u-audit")
	req.Header.Set("X-Test-Groups", "auditors")
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, bufio.NewReader(resp.Body)
}

func TestAPITail(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{MaxFollowers: 1})
	w.appendN(4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, br := w.openTail(ctx, "/v1/audit/tail?after=2&user=00u1", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if ev := readEvent(t, br); !strings.Contains(ev.comment, "after seq 2") {
		t.Fatalf("greeting: %+v", ev)
	}
	// Stored records first (3 is alice's; 4 is bob's and filtered out).
	ev := readEvent(t, br)
	if ev.event != "record" || ev.id != "3" {
		t.Fatalf("first event: %+v", ev)
	}
	if r, err := DecodeRecord([]byte(ev.data)); err != nil || r.Seq != 3 {
		t.Fatalf("data: %v %+v", err, r)
	}
	// Then new ones as they commit.
	w.appendN(1) // seq 5, alice's (apiRecord(1))
	if ev := readEvent(t, br); ev.id != "5" {
		t.Fatalf("new record: %+v", ev)
	}
	w.tick <- time.Time{}
	if ev := readEvent(t, br); ev.comment != "keep-alive" {
		t.Fatalf("keep-alive: %+v", ev)
	}
	// The follower slot is taken.
	var busy APIError
	w.getJSON("/v1/audit/tail", 503, &busy)
	if busy.Code != "busy" {
		t.Fatalf("%+v", busy)
	}
	// Closing the log ends the stream.
	w.log.Close()
	if ev := readEvent(t, br); ev.event != "end" || !strings.Contains(ev.data, "closed") {
		t.Fatalf("end: %+v", ev)
	}
}

func TestAPITailDefaultsToNewRecordsAndResumes(t *testing.T) {
	w := newAPIWorld(t, NewMemStore(), Options{}, HandlerOptions{})
	w.appendN(3)
	ctx, cancel := context.WithCancel(context.Background())
	resp, br := w.openTail(ctx, "/v1/audit/tail", nil)
	if ev := readEvent(t, br); !strings.Contains(ev.comment, "after seq 3") {
		t.Fatalf("greeting: %+v", ev)
	}
	w.appendN(1)
	if ev := readEvent(t, br); ev.id != "4" {
		t.Fatalf("got %+v, want seq 4", ev)
	}
	// The client goes away; the server's handler must return (srv.Close
	// in cleanup waits for it).
	cancel()
	resp.Body.Close()

	// A reconnect with Last-Event-ID resumes after it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resp2, br2 := w.openTail(ctx2, "/v1/audit/tail", http.Header{"Last-Event-Id": {"1"}})
	defer resp2.Body.Close()
	readEvent(t, br2)
	if ev := readEvent(t, br2); ev.id != "2" {
		t.Fatalf("resumed at %+v, want seq 2", ev)
	}
}

func TestAPIParseFilterQueryLimits(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := ParseFilterQuery(url.Values{"limit": {"50"}, "since": {"24h"}}, now, 10, "limit")
	if err != nil || f.Limit != 10 || !f.Since.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = ParseFilterQuery(url.Values{"limit": {"50"}}, now, 0, "limit")
	if err != nil || f.Limit != 50 {
		t.Fatalf("no cap: %+v %v", f, err)
	}
	if _, err := ParseFilterQuery(url.Values{"limit": {"5"}}, now, 10); err == nil {
		t.Fatal("limit accepted where not allowed")
	}
}

// FuzzParseFilterQuery: hostile query strings never panic, and whatever is
// accepted is a valid filter within the cap.
func FuzzParseFilterQuery(f *testing.F) {
	for _, s := range []string{
		"", "user=alice&limit=10&newest=true", "since=24h&until=2026-03-14T09:00:00Z",
		"after=18446744073709551615", "limit=9223372036854775807", "since=-1ns", "since=9999999999h",
		"kind=request&kind=response", "%zz", "since=2026-02-30T00:00:00Z", "until=0001-01-01T00:00:00Z",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilterQuery(q, now, 100, "limit", "newest")
		if err != nil {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != "bad_request" {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("accepted an invalid filter: %v", err)
		}
		if flt.Limit < 1 || flt.Limit > 100 {
			t.Fatalf("limit %d escapes the cap", flt.Limit)
		}
	})
}
