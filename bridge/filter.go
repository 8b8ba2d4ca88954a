package bridge

import (
	"context"
	"errors"
	"time"
)

// Direction says which way a message travels through the relay.
type Direction int

// Directions.
const (
	// FromClient is a message from the agent towards the upstream server.
	FromClient Direction = iota + 1
	// FromUpstream is a message from the upstream server towards the agent.
	FromUpstream
)

func (d Direction) String() string {
	if d == FromClient {
		return "client→upstream"
	}
	return "upstream→client"
}

// Exchange describes the message being filtered.
type Exchange struct {
	Session *SessionInfo
	// Principal is the identity that sent this message: the authenticated
	// caller of the HTTP request for client messages, the session's owner for
	// upstream messages.
	Principal any
	Direction Direction
	// Request is the request a response answers, when m is a response.
	Request *Message
	// RequestStarted is when Request arrived, for latency.
	RequestStarted time.Time
	// Notify sends a message to the client on the stream of the request
	// being decided, such as progress while a call is held. It is nil for
	// messages that are not client requests.
	Notify func(*Message)
	// Ask sends the gateway's own request to the client, such as an
	// elicitation, and returns the client's answer. It is nil for messages
	// that are not client requests, and on transports without a stream.
	Ask func(ctx context.Context, method string, params any) (*Message, error)
}

// Verdict is what a Filter decided. Exactly one of Forward and Reply is set
// for a request; Reply is a response sent back to the message's sender
// instead of forwarding. A verdict with neither drops the message.
type Verdict struct {
	Forward *Message
	Reply   *Message
}

// Filter sees every message that crosses a session, in both directions,
// before it is forwarded. It is where the gateway's pipeline (identity,
// policy, approval, masking, audit) plugs into the relay.
//
// An error refuses the message: a request is answered with a JSON-RPC error,
// a response is replaced by an error response, a notification is dropped.
// Nothing is ever forwarded unchecked.
type Filter interface {
	Filter(ctx context.Context, x *Exchange, m *Message) (Verdict, error)
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(ctx context.Context, x *Exchange, m *Message) (Verdict, error)

// Filter calls f.
func (f FilterFunc) Filter(ctx context.Context, x *Exchange, m *Message) (Verdict, error) {
	return f(ctx, x, m)
}

// PassThrough forwards every message unchanged.
var PassThrough Filter = FilterFunc(func(_ context.Context, _ *Exchange, m *Message) (Verdict, error) {
	return Verdict{Forward: m}, nil
})

// PublicError is an error whose message is safe to show the client. Errors
// that do not implement it reach the client only as a generic message, so
// internal details never leak.
type PublicError interface {
	error
	Public() (code int, message string)
}

type publicError struct {
	code int
	msg  string
	err  error
}

func (e *publicError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}
func (e *publicError) Public() (int, string) { return e.code, e.msg }
func (e *publicError) Unwrap() error         { return e.err }

// Errorf returns a PublicError: msg is shown to the client; cause, which may
// be nil, is kept for the log only.
func Errorf(code int, msg string, cause error) error {
	return &publicError{code: code, msg: msg, err: cause}
}

// publicMessage returns the code and client-safe text of err.
func publicMessage(err error) (int, string) {
	var pe PublicError
	if errors.As(err, &pe) {
		return pe.Public()
	}
	return CodeInternalError, "bridge: the gateway could not process this message; the details are in the gateway's log"
}
