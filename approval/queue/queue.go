package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// Limits on what people type.
const (
	// MaxCommentLen bounds a review comment, in bytes.
	MaxCommentLen = 2000
	// MaxJustificationLen bounds a requester's justification, in bytes.
	MaxJustificationLen = 2000
	// DefaultRecentWindow is Options.RecentWindow when zero.
	DefaultRecentWindow = 10 * time.Minute
	// DefaultMaxPendingPerRequester is Options.MaxPendingPerRequester
	// when zero.
	DefaultMaxPendingPerRequester = 20
	// DefaultMaxArgsBytes is Options.MaxArgsBytes when zero.
	DefaultMaxArgsBytes = 64 << 10
)

// Notifier is told of every event as it happens. Notify must not block:
// pass a *Dispatcher, which queues deliveries and retries them in the
// background.
type Notifier interface {
	Notify(Event)
}

// Options configure a Queue. All fields are optional.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Notifier hears of each created, approved, denied, expired and
	// cancelled request.
	Notifier Notifier
	// Logger receives one line per state change, naming ids, people,
	// server and tool but never argument values or comments.
	Logger *slog.Logger
	// DefaultTimeout is how long a request stays valid when it does not
	// say; policy.DefaultTimeout when zero.
	DefaultTimeout time.Duration
	// RecentWindow is how long after it was denied or expired a request
	// is still returned by FindForCall, so the requester's next identical
	// call can be told what happened; DefaultRecentWindow when zero.
	RecentWindow time.Duration
	// Rand supplies randomness for ids; crypto/rand when nil.
	Rand io.Reader
	// Digester keys the argument digests. When nil, the store's key is
	// used if it has one (BoltStore keeps one per installation); otherwise
	// (MemStore) a random key that lives as long as the queue.
	Digester *policy.Digester
	// MaxPendingPerRequester bounds the requests one requester may have
	// pending at once; DefaultMaxPendingPerRequester when zero.
	MaxPendingPerRequester int
	// MaxArgsBytes bounds the canonical arguments of a held call and of a
	// reviewer's edit, in bytes; DefaultMaxArgsBytes when zero.
	MaxArgsBytes int
	// CheckEdit, if set, is asked about a reviewer's edited arguments
	// (canonical JSON) before Decide records them; a refusal it returns
	// (an *Error, typically ErrEditRefused) reaches the reviewer. It lets
	// the reviewer learn at once what the gateway would find when the call
	// runs, where policy decides the edited call again.
	CheckEdit func(ctx context.Context, r *Request, edited json.RawMessage) error
}

// Queue is the durable approval queue: it holds calls that need a human
// decision, applies separation of duties, expires what nobody decided and
// hands an approved call out exactly once. It is safe for concurrent use;
// the Store serialises the state changes.
type Queue struct {
	store  Store
	now    func() time.Time
	notify Notifier
	log    *slog.Logger
	opts   Options
	events broker
	digest *policy.Digester
	// createMu makes counting a requester's pending requests and storing
	// a new one a single step, so concurrent calls cannot exceed the limit.
	createMu sync.Mutex
}

// New returns a queue over store.
func New(store Store, opts Options) (*Queue, error) {
	if store == nil {
		return nil, errors.New("approval queue: nil store")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = policy.DefaultTimeout
	}
	if opts.RecentWindow <= 0 {
		opts.RecentWindow = DefaultRecentWindow
	}
	if opts.MaxPendingPerRequester <= 0 {
		opts.MaxPendingPerRequester = DefaultMaxPendingPerRequester
	}
	if opts.MaxArgsBytes <= 0 {
		opts.MaxArgsBytes = DefaultMaxArgsBytes
	}
	d := opts.Digester
	if d == nil {
		key := make([]byte, policy.MinDigestKeyLen)
		if ks, ok := store.(interface{ DigestKey() []byte }); ok {
			key = ks.DigestKey()
		} else if _, err := io.ReadFull(cmp.Or(opts.Rand, rand.Reader), key); err != nil {
			return nil, fmt.Errorf("approval queue: making a digest key: %w", err)
		}
		var err error
		if d, err = policy.NewDigester(key); err != nil {
			return nil, fmt.Errorf("approval queue: %w", err)
		}
	}
	return &Queue{store: store, now: opts.Now, notify: opts.Notifier, log: opts.Logger, opts: opts, digest: d}, nil
}

// Digester returns the queue's argument digester: the gateway's audit
// records use the same keyed digests as the approval records.
func (q *Queue) Digester() *policy.Digester { return q.digest }

// Digest returns the keyed digest of a call's arguments, as FindForCall
// expects it.
func (q *Queue) Digest(args []byte) string { return q.digest.Args(args) }

// publish tells subscribers and the notifier about a change.
func (q *Queue) publish(t EventType, r *Request) {
	ev := q.events.publish(Event{Type: t, Time: q.now(), Request: r})
	if q.notify != nil && t != EventReviewed && t != EventExecuted {
		q.notify.Notify(ev)
	}
}

// Subscribe returns a channel of every event from now on, until ctx ends.
// A subscriber that falls far behind has its channel closed: re-read the
// state and subscribe again.
func (q *Queue) Subscribe(ctx context.Context) <-chan Event { return q.events.subscribe(ctx) }

// Create validates r and stores it as a new pending request. It fills ID,
// Created, Expires (Created + r.Timeout, or Options.DefaultTimeout),
// State, and ArgsDigest when empty (a digest that is given must match the
// arguments), and stores the arguments in canonical form: what reviewers
// see is what will run. MinApprovals 0 means 1. Approvers must not be
// empty: a request that nobody may approve would wait only to expire.
//
// It refuses with ErrLimit arguments over Options.MaxArgsBytes and a
// requester who already has Options.MaxPendingPerRequester pending.
func (q *Queue) Create(ctx context.Context, in *Request) (*Request, error) {
	r := in.Clone()
	if err := q.validateNew(r); err != nil {
		return nil, err
	}
	q.createMu.Lock()
	defer q.createMu.Unlock()
	live, err := q.store.Live(ctx, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("approval queue: counting pending requests: %w", err)
	}
	pending := 0
	for _, e := range live {
		if e.State == StatePending && e.Subject == r.Requester.Subject {
			pending++
		}
	}
	if pending >= q.opts.MaxPendingPerRequester {
		q.log.Warn("approval refused: too many pending", "requester", r.Requester.Subject, "server", r.Server, "tool", r.Tool,
			"pending", pending, "limit", q.opts.MaxPendingPerRequester)
		return nil, ErrLimit.with(fmt.Sprintf("you already have %d calls waiting for approval (the limit is %d); "+
			"wait for a reviewer to decide them, or let them expire, before asking for more", pending, q.opts.MaxPendingPerRequester))
	}
	r.Created = q.now().UTC()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = q.opts.DefaultTimeout
	}
	r.Expires = r.Created.Add(timeout)
	r.State = StatePending
	r.Reviews, r.EditedArgs, r.EditedDigest, r.EditedBy = nil, nil, "", nil
	r.DecidedAt, r.ExecutedAt, r.CancelReason = time.Time{}, time.Time{}, ""
	for range 5 { // 50-bit ids: a collision is all but impossible, but cheap to survive.
		if r.ID, err = newID(q.opts.Rand); err != nil {
			return nil, err
		}
		if err = q.store.Put(ctx, r); !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("approval queue: storing the request: %w", err)
	}
	q.log.Info("approval requested", "id", r.ID, "requester", r.Requester.Subject, "server", r.Server,
		"tool", r.Tool, "rule", r.Rule, "approvers", r.Approvers, "min_approvals", r.MinApprovals, "expires", r.Expires)
	q.publish(EventCreated, r.Clone())
	return r, nil
}

func (q *Queue) validateNew(r *Request) error {
	var missing []string
	if r.Requester.Subject == "" {
		missing = append(missing, "requester subject")
	}
	if r.Server == "" {
		missing = append(missing, "server")
	}
	if r.Tool == "" && (r.Method == "" || r.Method == policy.MethodToolsCall) {
		missing = append(missing, "tool")
	}
	if len(r.Approvers) == 0 {
		missing = append(missing, "approvers")
	}
	if len(missing) > 0 {
		return ErrInvalid.with("approval request lacks " + strings.Join(missing, ", "))
	}
	if r.MinApprovals <= 0 {
		r.MinApprovals = policy.DefaultMinApprovals
	}
	if len(r.Justification) > MaxJustificationLen {
		return ErrInvalid.with(fmt.Sprintf("the justification is longer than %d bytes", MaxJustificationLen))
	}
	c, err := policy.CanonicalJSON(r.Args)
	if err != nil {
		// Stored and served as JSON, so they must be JSON that reads one
		// way only; an approval of arguments nobody can read would be
		// meaningless anyway.
		return ErrInvalid.with("the call's arguments are not valid JSON (or have a duplicate name or invalid UTF-8)")
	}
	if len(c) > q.opts.MaxArgsBytes {
		return ErrLimit.with(fmt.Sprintf("its arguments are %d bytes, over the %d-byte limit for calls held for approval", len(c), q.opts.MaxArgsBytes))
	}
	d := q.digest.Canonical(c)
	if r.ArgsDigest != "" && r.ArgsDigest != d {
		return ErrInvalid.with("the argument digest does not match the arguments")
	}
	if len(r.Args) > 0 {
		r.Args = c
	}
	r.ArgsDigest = d
	return nil
}

// Get returns the request with the id, or ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	return q.store.Get(ctx, id)
}

// List returns the requests that match f, oldest first.
func (q *Queue) List(ctx context.Context, f Filter) ([]*Request, error) {
	return q.store.List(ctx, f)
}

// FindForCall returns the newest request for exactly this call (requester
// subject, server, tool and argument digest) that is pending; or approved,
// not yet executed and not expired; or denied or expired within
// Options.RecentWindow, so that the caller can tell the requester what
// became of it. A pending or approved request past its deadline is expired
// on the way and returned as such. It returns ErrNotFound when there is
// none: the call needs a new request. Cancelled and executed requests are
// never returned.
func (q *Queue) FindForCall(ctx context.Context, subject, server, tool, digest string) (*Request, error) {
	key := CallKey{Subject: subject, Server: server, Tool: tool, Digest: digest}
	rs, err := q.store.List(ctx, Filter{Call: &key})
	if err != nil {
		return nil, err
	}
	now := q.now()
	for _, r := range slices.Backward(rs) {
		switch r.State {
		case StatePending, StateApproved:
			if !now.Before(r.Expires) {
				return q.expire(ctx, r.ID)
			}
			return r, nil
		case StateDenied:
			if now.Sub(r.DecidedAt) < q.opts.RecentWindow {
				return r, nil
			}
		case StateExpired:
			if now.Sub(r.Expires) < q.opts.RecentWindow {
				return r, nil
			}
		}
	}
	return nil, ErrNotFound
}

// expire moves a pending or unclaimed approved request past its deadline
// to expired and returns it. A request that is final already is returned
// unchanged.
func (q *Queue) expire(ctx context.Context, id string) (*Request, error) {
	changed := false
	r, err := q.store.Update(ctx, id, func(r *Request) error {
		if (r.State == StatePending || r.State == StateApproved) && !q.now().Before(r.Expires) {
			r.State = StateExpired
			r.DecidedAt = q.now().UTC()
			changed = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		q.log.Info("approval expired", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject)
		q.publish(EventExpired, r.Clone())
	}
	return r, nil
}

// ExpireDue expires every pending request past its deadline, and every
// approved one that was not claimed in time. The gateway runs it on a
// ticker; Decide, Claim and FindForCall also expire lazily, so the ticker
// only bounds how late the "expired" event and notification are.
//
// It reads the store's deadline index and only the requests that are due,
// so a sweep costs little however many requests wait.
func (q *Queue) ExpireDue(ctx context.Context) (int, error) {
	now := q.now()
	due, err := q.store.Live(ctx, now)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range due {
		if now.Before(e.Expires) {
			continue
		}
		got, err := q.expire(ctx, e.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got.State == StateExpired {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Decide records a reviewer's decision. reviewer.Groups must come from the
// reviewer's verified token at the time of the decision.
//
// Separation of duties:
//   - the requester never reviews their own request, neither approving nor
//     denying it (ErrSelfReview; Cancel withdraws a request);
//   - the reviewer must hold one of the request's approver groups
//     (ErrNotApprover);
//   - one person counts once: a second approval of the same arguments by
//     the same subject is refused with ErrAlreadyReviewed, never counted;
//   - one deny ends the request (denied); approvals by MinApprovals
//     distinct people approve it.
//
// editedArgs, allowed only with Approve, replace the arguments of the call
// that runs. They must be a JSON object; they are stored in canonical form
// with their digest and the editor. Approvals given earlier for other
// arguments no longer count, so with MinApprovals 2 every counted approver
// has seen the arguments that will run; the editor's approval counts.
//
// A request that is not pending gives ErrNotPending (ErrExpired if it
// expired, expiring it now if its deadline passed), an unknown id
// ErrNotFound.
func (q *Queue) Decide(ctx context.Context, id string, reviewer Reviewer, decision Decision, comment string, editedArgs json.RawMessage) (*Request, error) {
	if decision != Approve && decision != Deny {
		return nil, ErrInvalid.with(`decision must be "approve" or "deny"`)
	}
	if len(comment) > MaxCommentLen {
		return nil, ErrInvalid.with(fmt.Sprintf("the comment is longer than %d bytes", MaxCommentLen))
	}
	if reviewer.Subject == "" {
		return nil, ErrInvalid.with("the reviewer has no subject")
	}
	var edited []byte
	var editedDigest string
	if len(editedArgs) > 0 && string(editedArgs) != "null" {
		if decision != Approve {
			return nil, ErrInvalid.with("edited arguments can only come with an approval")
		}
		c, err := policy.CanonicalJSON(editedArgs)
		if err != nil || len(c) == 0 || c[0] != '{' {
			return nil, ErrInvalid.with("edited arguments must be a JSON object (with no duplicate names)")
		}
		if len(c) > q.opts.MaxArgsBytes {
			return nil, ErrLimit.with(fmt.Sprintf("the edited arguments are %d bytes, over the %d-byte limit", len(c), q.opts.MaxArgsBytes))
		}
		edited, editedDigest = c, q.digest.Canonical(c)
	}
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if edited != nil && q.opts.CheckEdit != nil {
		cur, err := q.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if editedDigest != cur.ArgsDigest {
			if err := q.opts.CheckEdit(ctx, cur, edited); err != nil {
				return nil, err
			}
		}
	}
	var (
		expiredNow bool
		event      EventType
	)
	r, err := q.store.Update(ctx, id, func(r *Request) error {
		expiredNow, event = false, ""
		now := q.now().UTC()
		switch {
		case r.State == StateExpired:
			return ErrExpired.with(fmt.Sprintf("approval request %s expired at %s", r.ID, r.Expires.Format(time.RFC3339)))
		case r.State != StatePending:
			return ErrNotPending.with(fmt.Sprintf("approval request %s is already %s", r.ID, r.State))
		case !now.Before(r.Expires):
			r.State, r.DecidedAt = StateExpired, now
			expiredNow = true
			return nil
		}
		if reviewer.Subject == r.Requester.Subject ||
			reviewer.Email != "" && strings.EqualFold(reviewer.Email, r.Requester.Email) {
			return ErrSelfReview
		}
		held := holdsAny(reviewer.Groups, r.Approvers)
		if len(held) == 0 {
			return ErrNotApprover.with("you are not in an approver group for this request (it needs one of: " + strings.Join(r.Approvers, ", ") + ")")
		}
		if editedDigest != "" {
			if editedDigest == r.ArgsDigest {
				r.EditedArgs, r.EditedDigest, r.EditedBy = nil, "", nil
			} else if editedDigest != r.EditedDigest {
				by := Reviewer{Subject: reviewer.Subject, Email: reviewer.Email}
				r.EditedArgs, r.EditedDigest, r.EditedBy = edited, editedDigest, &by
			}
		}
		digest := r.EffectiveDigest()
		if decision == Approve {
			for _, rv := range r.Reviews {
				if rv.Decision == Approve && rv.Reviewer.Subject == reviewer.Subject && rv.ArgsDigest == digest {
					return ErrAlreadyReviewed
				}
			}
		}
		r.Reviews = append(r.Reviews, Review{
			Reviewer:   Reviewer{Subject: reviewer.Subject, Email: reviewer.Email, Groups: held},
			Decision:   decision,
			Comment:    comment,
			ArgsDigest: digest,
			Time:       now,
		})
		switch {
		case decision == Deny:
			r.State, r.DecidedAt, event = StateDenied, now, EventDenied
		case r.Approvals() >= r.MinApprovals:
			r.State, r.DecidedAt, event = StateApproved, now, EventApproved
		default:
			event = EventReviewed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if expiredNow {
		q.log.Info("approval expired", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject)
		q.publish(EventExpired, r.Clone())
		return nil, ErrExpired.with(fmt.Sprintf("approval request %s expired at %s", r.ID, r.Expires.Format(time.RFC3339)))
	}
	q.log.Info("approval reviewed", "id", r.ID, "reviewer", reviewer.Subject, "decision", decision,
		"state", r.State, "approvals", r.Approvals(), "min_approvals", r.MinApprovals, "edited_args", r.EditedDigest != "")
	q.publish(event, r.Clone())
	return r, nil
}

// Cancel withdraws a pending request: the client cancelled the call or
// its connection closed. reason is recorded and shown to reviewers.
func (q *Queue) Cancel(ctx context.Context, id, reason string) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if len(reason) > MaxCommentLen {
		reason = reason[:MaxCommentLen]
	}
	r, err := q.store.Update(ctx, id, func(r *Request) error {
		if r.State != StatePending {
			return ErrNotPending.with(fmt.Sprintf("approval request %s is already %s", r.ID, r.State))
		}
		r.State, r.DecidedAt, r.CancelReason = StateCancelled, q.now().UTC(), reason
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.log.Info("approval cancelled", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject)
	q.publish(EventCancelled, r.Clone())
	return r, nil
}

// Revoke withdraws an approved request that has not run: the gateway
// found that the call it would run is no longer what policy sends to this
// approval (a reviewer's edit that policy decides otherwise). reason is
// recorded and shown to reviewers; the request becomes cancelled, and the
// event is EventRevoked, which the caller audits itself.
func (q *Queue) Revoke(ctx context.Context, id, reason string) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if len(reason) > MaxCommentLen {
		reason = reason[:MaxCommentLen]
	}
	r, err := q.store.Update(ctx, id, func(r *Request) error {
		if r.State != StateApproved {
			return ErrNotApproved.with(fmt.Sprintf("approval request %s is %s, not approved", r.ID, r.State))
		}
		r.State, r.DecidedAt, r.CancelReason = StateCancelled, q.now().UTC(), reason
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.log.Warn("approval revoked", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject)
	q.publish(EventRevoked, r.Clone())
	return r, nil
}

// Claim atomically moves an approved request to executed and returns it;
// the caller then runs the call with r.EffectiveArgs(). Of any number of
// concurrent claims exactly one succeeds; the others get
// ErrAlreadyExecuted. It refuses a request that is pending, denied or
// cancelled (ErrNotApproved) and one that expired (ErrExpired), expiring
// an approved request whose validity ended.
func (q *Queue) Claim(ctx context.Context, id string) (*Request, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	expiredNow := false
	r, err := q.store.Update(ctx, id, func(r *Request) error {
		expiredNow = false
		now := q.now().UTC()
		switch r.State {
		case StateApproved:
		case StateExecuted:
			return ErrAlreadyExecuted
		case StateExpired:
			return ErrExpired
		case StatePending:
			return ErrNotApproved.with(fmt.Sprintf("approval request %s is still pending", r.ID))
		default:
			return ErrNotApproved.with(fmt.Sprintf("approval request %s was %s", r.ID, r.State))
		}
		if !now.Before(r.Expires) {
			r.State, r.DecidedAt = StateExpired, now
			expiredNow = true
			return nil
		}
		r.State, r.ExecutedAt = StateExecuted, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	if expiredNow {
		q.log.Info("approval expired", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject)
		q.publish(EventExpired, r.Clone())
		return nil, ErrExpired
	}
	q.log.Info("approved call claimed", "id", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject, "edited_args", r.EditedDigest != "")
	q.publish(EventExecuted, r.Clone())
	return r, nil
}

// Wait returns the request once it leaves pending, or ctx's error. It
// does not expire requests itself: run ExpireDue, or bound ctx.
func (q *Queue) Wait(ctx context.Context, id string) (*Request, error) {
	for {
		sctx, cancel := context.WithCancel(ctx)
		ch := q.Subscribe(sctx) // before Get, so no change slips between them
		r, err := q.Get(ctx, id)
		if err != nil || r.State != StatePending {
			cancel()
			return r, err
		}
		r, err = waitOn(ctx, ch, id)
		cancel()
		if r != nil || err != nil {
			return r, err
		}
		// The subscription was dropped for lagging: read and subscribe again.
	}
}

// waitOn reads events until id leaves pending; (nil, nil) means ch closed.
func waitOn(ctx context.Context, ch <-chan Event, id string) (*Request, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-ch:
			if !ok {
				return nil, nil
			}
			if ev.Request.ID == id && ev.Request.State != StatePending {
				return ev.Request.Clone(), nil
			}
		}
	}
}
