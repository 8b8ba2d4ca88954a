package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWebhookSignedDelivery(t *testing.T) {
	const secret = "hook-secret-value"
	clk := newClock()
	got := make(chan WebhookPayload, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature([]byte(secret), body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if VerifySignature([]byte("other"), body, r.Header.Get(SignatureHeader)) {
			t.Error("signature verified under the wrong secret")
		}
		if bytes.Contains(body, []byte("prod-api")) {
			t.Errorf("the body carries argument values: %s", body)
		}
		var p WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		if ts := r.Header.Get(TimestampHeader); ts != strconv.FormatInt(p.SentAt.Unix(), 10) {
			t.Errorf("timestamp header %s, body sent_at %v", ts, p.SentAt)
		}
		if r.Header.Get(DeliveryHeader) != p.Delivery {
			t.Errorf("delivery header %q, body %q", r.Header.Get(DeliveryHeader), p.Delivery)
		}
		got <- p
	}))
	defer srv.Close()

	d := NewDispatcher(DispatcherOptions{Senders: []Sender{&Webhook{URL: srv.URL, Secret: auth.Secret(secret), HTTPClient: srv.Client(), Now: clk.Now}}})
	defer d.Close()
	q, _ := New(NewMemStore(), Options{Now: clk.Now, Notifier: d})
	r := mustCreate(t, q, call(1))
	p := <-got
	if p.Event != "approval.created" || p.ID != r.ID || p.Server != "github" || p.Tool != "create_pull_request" ||
		p.Requester.Email != alice.Email || p.Rule != "writes-need-review" || p.ArgsDigest != r.ArgsDigest ||
		!p.Expires.Equal(r.Expires) || p.ApproveCommand != "bridge approvals approve "+r.ID {
		t.Errorf("payload %+v", p)
	}
	if _, err := q.Decide(context.Background(), r.ID, bob, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p.Event != "approval.approved" || p.State != StateApproved || p.ApproveCommand != "" || len(p.DecidedBy) != 1 {
		t.Errorf("decision payload %+v", p)
	}
}

// TestReceiversDownDoNotBlock: one receiver hangs, one answers 500. Create
// and Decide return regardless; the failing one is retried with growing
// backoff (counted with a fake sleep), and no secret reaches the log.
func TestReceiversDownDoNotBlock(t *testing.T) {
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	var hits atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()

	var mu sync.Mutex
	var sleeps []time.Duration
	results := make(chan error, 10)
	logs := &syncBuffer{}
	d := NewDispatcher(DispatcherOptions{
		Senders: []Sender{
			&Slack{WebhookURL: auth.Secret(hanging.URL + "/services/T0/B0/slack-url-secret"), HTTPClient: hanging.Client()},
			&Webhook{URL: failing.URL + "/hook", Secret: "hmac-secret-value", HTTPClient: failing.Client()},
		},
		QueueSize:   2,
		MaxAttempts: 4,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			sleeps = append(sleeps, d)
			mu.Unlock()
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Done: func(sender string, _ Event, err error) {
			if sender == "webhook" {
				results <- err
			}
		},
	})
	defer d.Close()
	q, _ := New(NewMemStore(), Options{Now: newClock().Now, Notifier: d})

	// More events than the slack queue holds: Notify drops, never blocks.
	var last *Request
	for range 5 {
		last = mustCreate(t, q, call(1))
	}
	if _, err := q.Decide(context.Background(), last.ID, bob, Deny, "", nil); err != nil {
		t.Fatal(err)
	}

	// The webhook's first event was tried MaxAttempts times.
	if err := <-results; err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("first delivery: %v", err)
	}
	mu.Lock()
	first := append([]time.Duration(nil), sleeps[:3]...)
	mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !equalDurations(first, want) {
		t.Errorf("backoff %v, want %v", first, want)
	}
	if hits.Load() < 4 {
		t.Errorf("%d attempts, want at least 4", hits.Load())
	}
	out := logs.String()
	if !strings.Contains(out, "notification dropped") {
		t.Errorf("a full queue was not logged:\n%s", out)
	}
	for _, secret := range []string{"slack-url-secret", "hmac-secret-value", "/hook"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	done := make(chan error, 1)
	d := NewDispatcher(DispatcherOptions{
		Senders: []Sender{&Slack{WebhookURL: auth.Secret(srv.URL), HTTPClient: srv.Client()}},
		Sleep:   func(context.Context, time.Duration) error { t.Error("slept before a permanent failure"); return nil },
		Done:    func(_ string, _ Event, err error) { done <- err },
	})
	defer d.Close()
	q, _ := New(NewMemStore(), Options{Now: newClock().Now, Notifier: d})
	mustCreate(t, q, call(1))
	if err := <-done; err == nil || hits.Load() != 1 {
		t.Fatalf("err %v after %d attempts", err, hits.Load())
	}
}

func TestSlackText(t *testing.T) {
	r := call(2)
	r.ID = "apr_abcdefghij"
	r.Requester.Email = "alice@example.com"
	r.Justification = "hotfix <!channel> & <https://evil.example|click>"
	r.Expires = time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)
	text := SlackText(Event{Type: EventCreated, Request: r})
	for _, want := range []string{
		"alice@example.com", "`github/create_pull_request`", "`bridge approvals approve apr_abcdefghij`",
		"`bridge approvals deny apr_abcdefghij`", "2026-03-01 12:15 UTC", "Needs 2 approval(s) from security-reviewers",
		"&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Slack text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<!channel>") || strings.Contains(text, "prod-api") {
		t.Errorf("Slack text carries raw user input or arguments:\n%s", text)
	}
	r.State = StateApproved
	r.Reviews = []Review{{Reviewer: Reviewer{Email: "bob@example.com"}, Decision: Approve}}
	r.EditedBy = &Reviewer{Email: "bob@example.com"}
	text = SlackText(Event{Type: EventApproved, Request: r})
	if !strings.Contains(text, "*approved* by bob@example.com") || !strings.Contains(text, "edited by bob@example.com") {
		t.Errorf("decision text:\n%s", text)
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	w := &Webhook{URL: "https://hooks.example/x", Secret: "s3cr3t"}
	s := &Slack{WebhookURL: "https://hooks.slack.com/services/T/B/s3cr3t"}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "webhook", w, "slack", s)
	if strings.Contains(b.String(), "s3cr3t") {
		t.Errorf("a secret reached the log: %s", b.String())
	}
}
