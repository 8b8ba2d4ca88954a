package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
)

// HeadEvent is the body the webhook witness posts for each signed head of
// the audit log, signed like approval webhooks (X-Bridge-Signature).
type HeadEvent struct {
	Event  string           `json:"event"` // "audit.head"
	SentAt time.Time        `json:"sent_at"`
	Head   audit.Checkpoint `json:"head"`
}

// webhookWitness posts every signed head to the configured notify
// webhooks, from its own goroutine so the audit writer never waits on the
// network. A head that cannot be queued or delivered is logged; the next
// one supersedes it.
type webhookWitness struct {
	targets []*queue.Webhook
	ch      chan audit.Checkpoint
	logger  *slog.Logger
	now     func() time.Time
	hc      *http.Client
	done    chan struct{}
}

func newWebhookWitness(cfg *config.Config, now func() time.Time, logger *slog.Logger) *webhookWitness {
	w := &webhookWitness{ch: make(chan audit.Checkpoint, 64), logger: logger, now: now,
		hc: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{})}
	for _, n := range cfg.Notify {
		if n.Type == "webhook" {
			w.targets = append(w.targets, &queue.Webhook{URL: n.ResolvedURL.Reveal(), Secret: n.ResolvedSecret})
		}
	}
	go w.run()
	return w
}

func (w *webhookWitness) Name() string { return "webhook" }

// Publish implements audit.Witness without blocking.
func (w *webhookWitness) Publish(_ context.Context, head audit.Checkpoint) error {
	select {
	case w.ch <- head:
		return nil
	default:
		return fmt.Errorf("webhook witness queue full; head %d dropped", head.Seq)
	}
}

// Close stops the sender after the queued heads are tried once.
func (w *webhookWitness) Close() {
	close(w.ch)
	<-w.done
}

func (w *webhookWitness) run() {
	defer close(w.done)
	for head := range w.ch {
		ev := HeadEvent{Event: "audit.head", SentAt: w.now().UTC().Truncate(time.Second), Head: head}
		body, err := json.Marshal(&ev)
		if err != nil {
			continue
		}
		for _, t := range w.targets {
			if err := w.post(t, ev, body); err != nil {
				w.logger.Error("audit webhook witness: delivery failed", "seq", head.Seq, "err", err)
			}
		}
	}
}

func (w *webhookWitness) post(t *queue.Webhook, ev HeadEvent, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invalid receiver URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bridge-notify")
	req.Header.Set(queue.TimestampHeader, strconv.FormatInt(ev.SentAt.Unix(), 10))
	req.Header.Set(queue.DeliveryHeader, "audit.head."+strconv.FormatUint(ev.Head.Seq, 10)+"."+strconv.FormatInt(ev.Head.Time.UnixNano(), 10))
	req.Header.Set(queue.SignatureHeader, queue.Sign([]byte(t.Secret.Reveal()), body))
	resp, err := w.hc.Do(req)
	if err != nil {
		return fmt.Errorf("delivery failed") // the URL may be a secret: never in the error
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}
