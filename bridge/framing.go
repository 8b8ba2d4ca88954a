package bridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrMessageTooLarge reports a message over the transport's size limit.
var ErrMessageTooLarge = errors.New("message too large")

// TooLargeError is a line over the limit. Prefix holds its first bytes, so
// the request it answers can still be answered with an error.
type TooLargeError struct {
	Limit  int
	Prefix []byte
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: over %d bytes", ErrMessageTooLarge, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) hold.
func (e *TooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// ID returns the top-level "id" of the oversized message, if its prefix
// shows one.
func (e *TooLargeError) ID() (json.RawMessage, bool) { return topLevelID(e.Prefix) }

// prefixBytes is how much of an oversized line is kept for its id.
const prefixBytes = 4096

// topLevelID scans the start of a JSON object for its top-level "id"
// member, skipping nested objects and strings, without parsing the rest.
func topLevelID(b []byte) (json.RawMessage, bool) {
	depth, i := 0, 0
	for i < len(b) {
		switch c := b[i]; c {
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case '"':
			end := stringEnd(b, i)
			if end < 0 {
				return nil, false
			}
			if depth == 1 && string(b[i:end]) == `"id"` {
				j := end
				for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == ':') {
					j++
				}
				k := j
				if k < len(b) && b[k] == '"' {
					if k = stringEnd(b, k); k < 0 {
						return nil, false
					}
				} else {
					for k < len(b) && (b[k] == '-' || b[k] == '.' || b[k] == 'e' || b[k] == 'E' || b[k] == '+' || (b[k] >= '0' && b[k] <= '9')) {
						k++
					}
				}
				id, _, err := parseID(b[j:k])
				return id, err == nil && k > j
			}
			i = end
		default:
			i++
		}
	}
	return nil, false
}

// stringEnd returns the index just past the JSON string starting at i, or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

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
		var prefix []byte
		for {
			chunk, err := lr.r.ReadSlice('\n')
			if !tooLarge {
				if len(lr.buf)+len(chunk) > lr.max+2 { // allow for \r\n
					tooLarge = true
					prefix = append(append([]byte(nil), lr.buf...), chunk...)
					prefix = prefix[:min(len(prefix), prefixBytes)]
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
			return nil, &TooLargeError{Limit: lr.max, Prefix: prefix}
		}
		line := bytes.TrimRight(lr.buf, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) > lr.max {
			return nil, &TooLargeError{Limit: lr.max, Prefix: append([]byte(nil), line[:min(len(line), prefixBytes)]...)}
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
