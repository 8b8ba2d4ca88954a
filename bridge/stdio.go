package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// StreamConn is a Conn over newline-delimited JSON-RPC, the MCP stdio
// framing: one message per line, UTF-8, no embedded newlines.
type StreamConn struct {
	lw        *LineWriter
	closer    io.Closer
	incoming  chan *Message
	readErr   error
	done      chan struct{}
	readDone  chan struct{} // closed when the reader has stopped
	closeOnce sync.Once
}

// StreamOptions configures a StreamConn.
type StreamOptions struct {
	// MaxMessageBytes bounds one line.
	MaxMessageBytes int
	// OnInvalid is told about each line that is not a valid message (too
	// large, malformed); the line is skipped. Nil ignores them.
	OnInvalid func(err error)
	// Closer is closed by Close, such as the subprocess's stdin.
	Closer io.Closer
	// AnswerOversized makes a message over the limit, or one the strict
	// decoding refuses, that shows its id arrive as an error response with
	// that id, so the request it answered is not left waiting. For
	// connections to a server, not to a client.
	AnswerOversized bool
}

// NewStreamConn reads messages from r and writes them to w.
func NewStreamConn(r io.Reader, w io.Writer, opts StreamOptions) *StreamConn {
	c := &StreamConn{
		lw:       NewLineWriter(w),
		closer:   opts.Closer,
		incoming: make(chan *Message, 64),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	go c.read(NewLineReader(r, opts.MaxMessageBytes), opts.OnInvalid, opts.AnswerOversized)
	return c
}

func (c *StreamConn) read(lr *LineReader, onInvalid func(error), answerOversized bool) {
	defer close(c.readDone)
	defer close(c.incoming)
	for {
		line, err := lr.ReadLine()
		if err != nil {
			if errors.Is(err, ErrMessageTooLarge) {
				if onInvalid != nil {
					onInvalid(err)
				}
				var tl *TooLargeError
				if answerOversized && errors.As(err, &tl) {
					if id, ok := tl.ID(); ok {
						m := NewError(id, CodeRefused, fmt.Sprintf("bridge: the server's answer was over the %d-byte message limit and was dropped", tl.Limit))
						select {
						case c.incoming <- m:
						case <-c.done:
							return
						}
					}
				}
				continue
			}
			if err != io.EOF {
				c.readErr = err
			}
			return
		}
		// ReadLine reuses its buffer; Parse keeps the bytes.
		m, err := Parse(append([]byte(nil), line...))
		if err != nil {
			if onInvalid != nil {
				onInvalid(err)
			}
			var pe *ParseError
			if answerOversized && errors.As(err, &pe) && pe.ID != nil {
				// The request this answered must not wait forever; the
				// answer itself is not passed on, as it cannot be read
				// one way only.
				m := NewError(pe.ID, CodeRefused, "bridge: the server's answer could not be read unambiguously and was dropped")
				m.Unreadable = true
				select {
				case c.incoming <- m:
				case <-c.done:
					return
				}
			}
			continue
		}
		select {
		case c.incoming <- m:
		case <-c.done:
			return
		}
	}
}

// Recv returns the next valid message, or io.EOF at the end of input.
func (c *StreamConn) Recv(ctx context.Context) (*Message, error) {
	select {
	case m, ok := <-c.incoming:
		if !ok {
			if c.readErr != nil {
				return nil, c.readErr
			}
			return nil, io.EOF
		}
		return m, nil
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Send writes m as one line.
func (c *StreamConn) Send(_ context.Context, m *Message) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	return c.lw.WriteLine(m.Raw)
}

// WriteRaw writes a line that is already a JSON-RPC message.
func (c *StreamConn) WriteRaw(b []byte) error { return c.lw.WriteLine(b) }

// Close stops reading and closes the Closer.
func (c *StreamConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		if c.closer != nil {
			err = c.closer.Close()
		}
	})
	return err
}
