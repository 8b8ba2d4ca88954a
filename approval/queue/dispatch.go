package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Sender delivers one event to one receiver (a Slack channel, a webhook).
// It may be slow or fail: a Dispatcher calls it in the background.
type Sender interface {
	// Name names the receiver in logs ("slack", "webhook"). It must not
	// contain the URL, which can itself be a secret.
	Name() string
	// Send delivers ev once. An error wrapped with Permanent is not retried.
	Send(ctx context.Context, ev Event) error
}

// permanentError marks a delivery failure that retrying will not fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (the receiver refused the
// message itself, say with HTTP 400 or 404).
func Permanent(err error) error { return permanentError{err} }

// DispatcherOptions configure NewDispatcher. Zero fields get defaults.
type DispatcherOptions struct {
	// Senders receive every event given to Notify.
	Senders []Sender
	// QueueSize bounds each sender's backlog (default 256). When it is
	// full, new events for that sender are dropped and logged.
	QueueSize int
	// MaxAttempts bounds deliveries of one event to one sender (default 5).
	MaxAttempts int
	// Backoff is the wait before the first retry (default 1s); it doubles
	// for each further retry, up to MaxBackoff (default 1m).
	Backoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one delivery attempt (default 10s).
	AttemptTimeout time.Duration
	// Sleep waits d or until ctx ends; tests replace it. The default uses a
	// timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger reports failed and dropped deliveries (by id and receiver
	// name, never by URL or secret).
	Logger *slog.Logger
	// Done, if set, is called after the last attempt of each delivery with
	// its outcome (nil on success). It runs on the sender's goroutine.
	Done func(sender string, ev Event, err error)
}

// Dispatcher is a Notifier that delivers events to its senders in the
// background: Notify only enqueues, so a slow or failing receiver never
// delays a decision. Each sender has its own bounded queue and goroutine,
// so one slow receiver does not hold up another. Deliveries are retried
// with exponential backoff.
type Dispatcher struct {
	opts    DispatcherOptions
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type worker struct {
	s  Sender
	ch chan Event
}

// NewDispatcher starts one delivery goroutine per sender; Close stops them.
func NewDispatcher(opts DispatcherOptions) *Dispatcher {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{opts: opts, cancel: cancel}
	for _, s := range opts.Senders {
		w := &worker{s: s, ch: make(chan Event, opts.QueueSize)}
		d.workers = append(d.workers, w)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.run(ctx, w)
		}()
	}
	return d
}

// Notify enqueues ev for every sender without blocking.
func (d *Dispatcher) Notify(ev Event) {
	for _, w := range d.workers {
		select {
		case w.ch <- ev:
		default:
			d.opts.Logger.Warn("notification dropped: queue full", "receiver", w.s.Name(), "id", ev.Request.ID, "event", ev.Type)
		}
	}
}

// Close stops delivery and waits for the goroutines to end. Events still
// queued are dropped.
func (d *Dispatcher) Close() {
	d.cancel()
	d.wg.Wait()
}

func (d *Dispatcher) run(ctx context.Context, w *worker) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.ch:
			err := d.deliver(ctx, w.s, ev)
			if err != nil && ctx.Err() == nil {
				d.opts.Logger.Warn("notification failed", "receiver", w.s.Name(), "id", ev.Request.ID, "event", ev.Type, "err", err)
			}
			if d.opts.Done != nil {
				d.opts.Done(w.s.Name(), ev, err)
			}
		}
	}
}

// deliver tries ev up to MaxAttempts times.
func (d *Dispatcher) deliver(ctx context.Context, s Sender, ev Event) error {
	wait := d.opts.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, d.opts.AttemptTimeout)
		err = s.Send(actx, ev)
		cancel()
		var pe permanentError
		if err == nil || errors.As(err, &pe) || attempt >= d.opts.MaxAttempts || ctx.Err() != nil {
			return err
		}
		d.opts.Logger.Debug("notification retry", "receiver", s.Name(), "id", ev.Request.ID, "attempt", attempt, "err", err)
		if serr := d.opts.Sleep(ctx, wait); serr != nil {
			return err
		}
		wait = min(2*wait, d.opts.MaxBackoff)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
