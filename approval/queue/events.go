package queue

import (
	"context"
	"sync"
	"time"
)

// EventType names what happened to a request.
type EventType string

// The event types.
const (
	EventCreated   EventType = "created"
	EventReviewed  EventType = "reviewed" // an approval that did not yet reach MinApprovals
	EventApproved  EventType = "approved"
	EventDenied    EventType = "denied"
	EventExpired   EventType = "expired"
	EventCancelled EventType = "cancelled"
	// EventRevoked: an approved request withdrawn before it ran (Revoke);
	// the request is then cancelled.
	EventRevoked  EventType = "revoked"
	EventExecuted EventType = "executed"
)

// Event is a change to a request. Request is the state after the change;
// it is shared between subscribers and must be treated as read-only.
type Event struct {
	// Seq numbers the queue's events from 1, in publication order.
	Seq     uint64    `json:"seq"`
	Type    EventType `json:"type"`
	Time    time.Time `json:"time"`
	Request *Request  `json:"request"`
}

// subscriberBuffer is how many events a subscriber may fall behind before
// it is dropped.
const subscriberBuffer = 256

// broker fans events out to subscribers without ever blocking the
// publisher: a subscriber that falls subscriberBuffer events behind has its
// channel closed, and must re-read the state it cares about and subscribe
// again.
type broker struct {
	mu   sync.Mutex
	seq  uint64
	subs map[chan Event]struct{}
}

func (b *broker) subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, subscriberBuffer)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[chan Event]struct{})
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.drop(ch)
	}()
	return ch
}

// drop unsubscribes ch and closes it, once.
func (b *broker) drop(ch chan Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

func (b *broker) publish(ev Event) Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev.Seq = b.seq
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
	return ev
}
