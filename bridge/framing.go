package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrMessageTooLarge reports a message over the transport's size limit.
var ErrMessageTooLarge = errors.New("message too large")

// LineReader reads newline-delimited messages, the MCP stdio framing,
// refusing any line longer than a limit without buffering it.
type LineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewLineReader returns a LineReader over r that accepts lines up to max bytes.
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadLine returns the next non-empty line without its line ending. The slice
// is valid until the next call. A line over the limit is skipped to its end and
// reported as ErrMessageTooLarge; the reader can be used again afterwards.
func (lr *LineReader) ReadLine() ([]byte, error) {
	for {
		lr.buf = lr.buf[:0]
		tooLarge := false
		for {
			chunk, err := lr.r.ReadSlice('\n')
			if !tooLarge {
				if len(lr.buf)+len(chunk) > lr.max+2 { // allow for \r\n
					tooLarge = true
					lr.buf = lr.buf[:0]
				} else {
					lr.buf = append(lr.buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err == io.EOF && (len(lr.buf) > 0 || tooLarge) {
					break // last line without newline
				}
				return nil, err
			}
			break
		}
		if tooLarge {
			return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, lr.max)
		}
		line := bytes.TrimRight(lr.buf, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) > lr.max {
			return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, lr.max)
		}
		return line, nil
	}
}

// LineWriter writes newline-delimited messages. It is safe for concurrent
// use: each message is written whole.
type LineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLineWriter returns a LineWriter over w.
func NewLineWriter(w io.Writer) *LineWriter { return &LineWriter{w: w} }

// WriteLine writes b and a newline. b must not contain a newline; JSON
// encoders never emit a raw one.
func (lw *LineWriter) WriteLine(b []byte) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if bytes.IndexByte(b, '\n') >= 0 {
		b = bytes.ReplaceAll(b, []byte("\n"), nil) // whitespace only: JSON strings escape newlines
	}
	buf := make([]byte, 0, len(b)+1)
	buf = append(append(buf, b...), '\n')
	_, err := lw.w.Write(buf)
	return err
}
