package queue

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// Headers of a Webhook delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the webhook's secret.
	SignatureHeader = "X-Bridge-Signature"
	// TimestampHeader carries the Unix time of the delivery attempt; the
	// body's signed "sent_at" holds the same instant.
	TimestampHeader = "X-Bridge-Timestamp"
	// DeliveryHeader is the same for every attempt of one delivery, so a
	// receiver can drop duplicates from retries.
	DeliveryHeader = "X-Bridge-Delivery"
)

// defaultNotifyTimeout bounds a delivery when no HTTPClient is given.
const defaultNotifyTimeout = 10 * time.Second

// ApproveCommand is the command a reviewer runs to approve the request.
func ApproveCommand(id string) string { return "bridge approvals approve " + id }

// DenyCommand is the command a reviewer runs to deny the request.
func DenyCommand(id string) string { return "bridge approvals deny " + id }

// WebhookPayload is the JSON body of a Webhook delivery. It summarises the
// request without its argument values: receivers get the digest, and
// reviewers read the arguments with `bridge approvals show`.
type WebhookPayload struct {
	// Event is "approval." and the event type, such as "approval.created".
	Event    string    `json:"event"`
	Delivery string    `json:"delivery"`
	SentAt   time.Time `json:"sent_at"`

	ID            string    `json:"id"`
	State         State     `json:"state"`
	Server        string    `json:"server"`
	Method        string    `json:"method,omitempty"`
	Tool          string    `json:"tool"`
	Requester     Requester `json:"requester"`
	Justification string    `json:"justification,omitempty"`
	Rule          string    `json:"rule,omitempty"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	ArgsDigest    string    `json:"args_digest"`
	EditedDigest  string    `json:"edited_digest,omitempty"`
	EditedBy      string    `json:"edited_by,omitempty"`
	Approvers     []string  `json:"approvers"`
	MinApprovals  int       `json:"min_approvals"`
	Approvals     int       `json:"approvals"`
	DecidedBy     []string  `json:"decided_by,omitempty"`
	Created       time.Time `json:"created"`
	Expires       time.Time `json:"expires"`
	DecidedAt     time.Time `json:"decided_at,omitzero"`

	ApproveCommand string `json:"approve_command,omitempty"`
	DenyCommand    string `json:"deny_command,omitempty"`
}

// NewWebhookPayload summarises ev for a receiver.
func NewWebhookPayload(ev Event, sentAt time.Time) WebhookPayload {
	r := ev.Request
	p := WebhookPayload{
		Event:    "approval." + string(ev.Type),
		Delivery: fmt.Sprintf("%s.%d", r.ID, ev.Seq),
		SentAt:   sentAt.UTC().Truncate(time.Second),
		ID:       r.ID, State: r.State, Server: r.Server, Method: r.Method, Tool: r.Tool,
		Requester:     Requester{Subject: r.Requester.Subject, Email: r.Requester.Email},
		Justification: r.Justification, Rule: r.Rule, PolicyVersion: r.PolicyVersion,
		ArgsDigest: r.ArgsDigest, EditedDigest: r.EditedDigest,
		Approvers: r.Approvers, MinApprovals: r.MinApprovals, Approvals: r.Approvals(),
		Created: r.Created, Expires: r.Expires, DecidedAt: r.DecidedAt,
	}
	if r.EditedBy != nil {
		p.EditedBy = r.EditedBy.display()
	}
	for _, rv := range r.Reviews {
		p.DecidedBy = append(p.DecidedBy, rv.Reviewer.display()+": "+string(rv.Decision))
	}
	if r.State == StatePending {
		p.ApproveCommand, p.DenyCommand = ApproveCommand(r.ID), DenyCommand(r.ID)
	}
	return p
}

// Sign returns the SignatureHeader value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports, in constant time, whether header is the
// signature of body under secret. Receivers should also check that the
// body's sent_at is recent, to refuse replays.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Webhook posts a signed WebhookPayload to URL.
type Webhook struct {
	URL string
	// Secret keys the HMAC-SHA256 signature. It is never logged.
	Secret auth.Secret
	// HTTPClient sends the request; a client with a 10s timeout when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Name implements Sender.
func (w *Webhook) Name() string { return "webhook" }

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, ev Event) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	p := NewWebhookPayload(ev, now())
	body, err := json.Marshal(p)
	if err != nil {
		return Permanent(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(TimestampHeader, strconv.FormatInt(p.SentAt.Unix(), 10))
	h.Set(DeliveryHeader, p.Delivery)
	h.Set(SignatureHeader, Sign([]byte(w.Secret.Reveal()), body))
	return post(ctx, w.HTTPClient, w.URL, h, body)
}

// Slack posts a message to a Slack incoming webhook naming the requester,
// the call, the deadline and the exact command that approves it.
type Slack struct {
	// WebhookURL is the incoming-webhook URL. It is a secret: anyone who
	// has it can post to the channel. It is never logged.
	WebhookURL auth.Secret
	// HTTPClient sends the request; a client with a 10s timeout when nil.
	HTTPClient *http.Client
}

// Name implements Sender.
func (s *Slack) Name() string { return "slack" }

// Send implements Sender.
func (s *Slack) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(map[string]string{"text": SlackText(ev)})
	if err != nil {
		return Permanent(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return post(ctx, s.HTTPClient, s.WebhookURL.Reveal(), h, body)
}

// SlackText is the Slack message (mrkdwn) for ev.
func SlackText(ev Event) string {
	r := ev.Request
	who := slackEscape(r.Requester.Email)
	if who == "" {
		who = slackEscape(r.Requester.Subject)
	}
	call := slackCode(r.Server + "/" + r.Tool)
	deadline := fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", r.Expires.Unix(), r.Expires.UTC().Format("2006-01-02 15:04 MST"))
	var b strings.Builder
	switch ev.Type {
	case EventCreated:
		fmt.Fprintf(&b, ":raised_hand: *Approval needed* %s\n%s wants to call %s", slackCode(r.ID), who, call)
		if r.Rule != "" {
			fmt.Fprintf(&b, " (rule %s)", slackCode(r.Rule))
		}
		fmt.Fprintf(&b, ".\nNeeds %d approval(s) from %s by %s.\n", r.MinApprovals, slackEscape(strings.Join(r.Approvers, ", ")), deadline)
		if r.Justification != "" {
			fmt.Fprintf(&b, "Reason given: %s\n", slackEscape(truncate(r.Justification, 300)))
		}
		fmt.Fprintf(&b, "Review: %s\nApprove: %s\nDeny: %s",
			slackCode("bridge approvals show "+r.ID), slackCode(ApproveCommand(r.ID)), slackCode(DenyCommand(r.ID)))
	default:
		by := ""
		if n := len(r.Reviews); n > 0 && (ev.Type == EventApproved || ev.Type == EventDenied) {
			by = " by " + slackEscape(r.Reviews[n-1].Reviewer.display())
		}
		fmt.Fprintf(&b, "Approval %s for %s (requested by %s) was *%s*%s.", slackCode(r.ID), call, who, ev.Type, by)
		if r.EditedBy != nil && ev.Type == EventApproved {
			fmt.Fprintf(&b, " The arguments were edited by %s.", slackEscape(r.EditedBy.display()))
		}
	}
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn reserves, so
// that user-supplied text cannot form links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackCode renders s as inline code that s cannot break out of.
func slackCode(s string) string {
	return "`" + strings.ReplaceAll(slackEscape(s), "`", "'") + "`"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// post sends body and maps the answer to nil, a retryable error or a
// Permanent one. Errors never contain the URL, which may be a secret.
func post(ctx context.Context, hc *http.Client, target string, h http.Header, body []byte) error {
	if hc == nil {
		hc = &http.Client{Timeout: defaultNotifyTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Permanent(errors.New("invalid receiver URL"))
	}
	req.Header = h
	req.Header.Set("User-Agent", "bridge-notify")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL
		}
		return fmt.Errorf("delivery failed: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooEarly, c == http.StatusTooManyRequests, c >= 500:
		return fmt.Errorf("receiver answered HTTP %d", c)
	default:
		return Permanent(fmt.Errorf("receiver refused the message: HTTP %d", c))
	}
}
