package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// bearerIdentify is a fake of the gateway's authentication: the bearer
// token is the person's name.
func bearerIdentify(r *http.Request) (Reviewer, bool) {
	people := map[string]Reviewer{"alice": alice, "bob": bob, "carol": carol, "mallory": mallory}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Reviewer{}, false
	}
	p, ok := people[tok]
	return p, ok
}

func newAPI(t *testing.T) (*Queue, *fakeClock, *httptest.Server) {
	t.Helper()
	clk := newClock()
	q := newQueue(t, NewMemStore(), clk)
	srv := httptest.NewServer(NewHandler(q, bearerIdentify, HandlerOptions{MaxBodyBytes: 4096}))
	t.Cleanup(srv.Close)
	return q, clk, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, who, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+who)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAPIStatusCodes(t *testing.T) {
	q, clk, srv := newAPI(t)
	r := mustCreate(t, q, call(1))
	short := call(1)
	short.Timeout = time.Minute
	soon := mustCreate(t, q, short)
	path := "/v1/approvals/" + r.ID
	tests := []struct {
		name, method, path, who, body string
		want                          int
		wantCode                      string
	}{
		{"no identity", "GET", "/v1/approvals", "", "", 401, "unauthenticated"},
		{"unknown person", "GET", "/v1/approvals", "eve", "", 401, "unauthenticated"},
		{"list", "GET", "/v1/approvals?state=pending", "bob", "", 200, ""},
		{"bad state", "GET", "/v1/approvals?state=waiting", "bob", "", 400, "invalid"},
		{"bad limit", "GET", "/v1/approvals?limit=-1", "bob", "", 400, "invalid"},
		{"show to approver", "GET", path, "bob", "", 200, ""},
		{"show to requester", "GET", path, "alice", "", 200, ""},
		{"show to outsider", "GET", path, "mallory", "", 404, "not_found"},
		{"show unknown", "GET", "/v1/approvals/apr_aaaaaaaaaa", "bob", "", 404, "not_found"},
		{"bad json", "POST", path + "/decision", "bob", `{"decision":`, 400, "invalid"},
		{"unknown field", "POST", path + "/decision", "bob", `{"decision":"approve","force":true}`, 400, "invalid"},
		{"bad decision", "POST", path + "/decision", "bob", `{"decision":"yes"}`, 400, "invalid"},
		{"edited args not object", "POST", path + "/decision", "bob", `{"decision":"approve","edited_args":[1]}`, 400, "invalid"},
		{"too large", "POST", path + "/decision", "bob", `{"decision":"approve","comment":"` + strings.Repeat("x", 5000) + `"}`, 413, "invalid"},
		{"self approval", "POST", path + "/decision", "alice", `{"decision":"approve"}`, 403, "self_review"},
		{"outsider", "POST", path + "/decision", "mallory", `{"decision":"approve"}`, 403, "not_approver"},
		{"unknown id", "POST", "/v1/approvals/apr_aaaaaaaaaa/decision", "bob", `{"decision":"approve"}`, 404, "not_found"},
		{"approve", "POST", path + "/decision", "bob", `{"decision":"approve","comment":"ok"}`, 200, ""},
		{"decided already", "POST", path + "/decision", "carol", `{"decision":"deny"}`, 409, "not_pending"},
		{"outsider on decided", "POST", path + "/decision", "mallory", `{"decision":"deny"}`, 403, "not_approver"},
		{"wrong method", "DELETE", path, "bob", "", 405, ""},
	}
	for _, tt := range tests {
		status, body := do(t, srv, tt.method, tt.path, tt.who, tt.body)
		if status != tt.want {
			t.Errorf("%s: HTTP %d, want %d: %s", tt.name, status, tt.want, body)
			continue
		}
		if tt.wantCode != "" {
			var eb ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tt.wantCode || eb.Error.Message == "" {
				t.Errorf("%s: body %s, want code %s", tt.name, body, tt.wantCode)
			}
		}
	}
	clk.Advance(2 * time.Minute)
	if status, body := do(t, srv, "POST", "/v1/approvals/"+soon.ID+"/decision", "bob", `{"decision":"approve"}`); status != 409 || !strings.Contains(string(body), `"expired"`) {
		t.Errorf("expired: HTTP %d %s", status, body)
	}
}

func TestAPIListVisibility(t *testing.T) {
	q, clk, srv := newAPI(t)
	r := mustCreate(t, q, call(1))
	clk.Advance(time.Second)
	own := call(1)
	own.Requester = Requester{Subject: mallory.Subject, Email: mallory.Email}
	own.Approvers = []string{"sre"}
	m := mustCreate(t, q, own)
	list := func(who, query string) []string {
		status, body := do(t, srv, "GET", "/v1/approvals"+query, who, "")
		if status != 200 {
			t.Fatalf("HTTP %d %s", status, body)
		}
		var lr ListResponse
		if err := json.Unmarshal(body, &lr); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range lr.Approvals {
			ids = append(ids, x.ID)
		}
		return ids
	}
	for _, tt := range []struct {
		who, query string
		want       []string
	}{
		{"alice", "", []string{r.ID}},
		{"bob", "", []string{r.ID}},
		{"carol", "", []string{r.ID, m.ID}}, // security-reviewers and sre
		{"mallory", "", []string{m.ID}},
		{"carol", "?limit=1", []string{m.ID}}, // the newest
		{"carol", "?state=approved", nil},
		{"carol", "?state=pending,approved", []string{r.ID, m.ID}},
	} {
		if got := list(tt.who, tt.query); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s%s sees %v, want %v", tt.who, tt.query, got, tt.want)
		}
	}
}

func TestAPIEditedArgs(t *testing.T) {
	q, _, srv := newAPI(t)
	r := mustCreate(t, q, call(1))
	status, body := do(t, srv, "POST", "/v1/approvals/"+r.ID+"/decision", "bob", `{"decision":"approve","edited_args":{"repo":"staging-api"}}`)
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, body)
	}
	var got Request
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.State != StateApproved || string(got.EditedArgs) != `{"repo":"staging-api"}` || got.EditedBy.Subject != bob.Subject {
		t.Errorf("got %+v", got)
	}
}

// sseClient reads one event stream.
type sseClient struct {
	t    *testing.T
	body io.ReadCloser
	rd   *bufio.Reader
}

func openEvents(t *testing.T, srv *httptest.Server, who string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/approvals/events", nil)
	req.Header.Set("Authorization", "Bearer "+who)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, body: resp.Body, rd: bufio.NewReader(resp.Body)}
	// The handler subscribes before it writes ": connected".
	for {
		line := c.line()
		if line == ": connected" {
			return c
		}
	}
}

func (c *sseClient) line() string {
	l, err := c.rd.ReadString('\n')
	if err != nil {
		c.t.Fatalf("event stream: %v", err)
	}
	return strings.TrimRight(l, "\n")
}

// next returns the next event's type and data, skipping comments.
func (c *sseClient) next() (string, Event) {
	var typ string
	var ev Event
	for {
		l := c.line()
		switch {
		case strings.HasPrefix(l, "event: "):
			typ = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &ev); err != nil {
				c.t.Fatal(err)
			}
		case l == "" && typ != "":
			return typ, ev
		}
	}
}

func TestAPIEventStream(t *testing.T) {
	q, _, srv := newAPI(t)
	bobStream := openEvents(t, srv, "bob")
	malloryStream := openEvents(t, srv, "mallory")

	r := mustCreate(t, q, call(1))
	typ, ev := bobStream.next()
	if typ != "created" || ev.Request.ID != r.ID || ev.Request.State != StatePending {
		t.Fatalf("bob got %s %+v", typ, ev)
	}
	if _, err := q.Decide(context.Background(), r.ID, bob, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if typ, ev := bobStream.next(); typ != "approved" || ev.Request.State != StateApproved {
		t.Fatalf("bob got %s %+v", typ, ev)
	}
	// Mallory sees none of alice's request: her first event is her own.
	own := call(1)
	own.Requester = Requester{Subject: mallory.Subject}
	m := mustCreate(t, q, own)
	if typ, ev := malloryStream.next(); typ != "created" || ev.Request.ID != m.ID {
		t.Fatalf("mallory got %s for %s, want created for her own %s", typ, ev.Request.ID, m.ID)
	}
}

func TestAPIKeepAlive(t *testing.T) {
	q := newQueue(t, NewMemStore(), newClock())
	tick := make(chan time.Time)
	srv := httptest.NewServer(NewHandler(q, bearerIdentify, HandlerOptions{
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} },
	}))
	t.Cleanup(srv.Close) // after the stream's cleanup closes it
	c := openEvents(t, srv, "bob")
	tick <- time.Time{}
	for c.line() != ": keep-alive" {
	}
}

func TestAPICloseEndsStreams(t *testing.T) {
	q := newQueue(t, NewMemStore(), newClock())
	h := NewHandler(q, bearerIdentify, HandlerOptions{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := openEvents(t, srv, "bob")
	h.Close()
	if _, err := io.ReadAll(c.rd); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
}

func TestParseDecisionBodyStrict(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"plain", `{"decision":"approve"}`, true},
		{"spaced", " {\"decision\":\"deny\",\"comment\":\"no\"}\n", true},
		{"duplicate decision", `{"decision":"deny","decision":"approve"}`, false},
		{"case variant", `{"Decision":"approve"}`, false},
		{"case-variant duplicate", `{"decision":"deny","DECISION":"approve"}`, false},
		{"duplicate inside the edit", `{"decision":"approve","edited_args":{"a":1,"a":2}}`, false},
		{"trailing data", `{"decision":"approve"} {}`, false},
		{"unknown member", `{"decision":"approve","x":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDecisionBody([]byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("ParseDecisionBody(%s) = %v, want ok %v", tt.body, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v is not ErrInvalid", err)
			}
		})
	}
}
