package bridge

import (
	"context"
	"errors"
)

// Conn is a bidirectional stream of JSON-RPC messages with one peer.
//
// Send is safe for concurrent use; each message is delivered whole. Recv must
// be called from a single goroutine; it returns io.EOF once the peer has gone
// and every message it sent has been read. Close is safe to call more than
// once and from any goroutine; it unblocks Recv.
type Conn interface {
	Send(ctx context.Context, m *Message) error
	Recv(ctx context.Context) (*Message, error)
	Close() error
}

// ErrClosed is returned by Send on a closed Conn.
var ErrClosed = errors.New("connection closed")
