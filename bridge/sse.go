package bridge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Event is one server-sent event.
type Event struct {
	Name string // "event:" field; "message" when empty
	ID   string
	Data []byte
}

// writeEvent writes one event in text/event-stream format. Data is split on
// newlines as the format requires.
func writeEvent(w io.Writer, ev Event) error {
	var buf bytes.Buffer
	if ev.Name != "" {
		fmt.Fprintf(&buf, "event: %s\n", ev.Name)
	}
	if ev.ID != "" {
		fmt.Fprintf(&buf, "id: %s\n", ev.ID)
	}
	for _, line := range bytes.Split(ev.Data, []byte("\n")) {
		buf.WriteString("data: ")
		buf.Write(bytes.TrimRight(line, "\r"))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// EventReader reads a text/event-stream, bounding each event's size.
type EventReader struct {
	lr *LineReaderRaw
}

// LineReaderRaw reads lines including empty ones, which SSE uses as event
// terminators, with a bound on line length.
type LineReaderRaw struct {
	r   *bufio.Reader
	max int
}

// NewEventReader returns a reader of events from r, each at most max bytes.
func NewEventReader(r io.Reader, max int) *EventReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &EventReader{lr: &LineReaderRaw{r: bufio.NewReaderSize(r, 64<<10), max: max}}
}

func (l *LineReaderRaw) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(buf)+len(chunk) > l.max+2 {
			return "", fmt.Errorf("%w: event line over %d bytes", ErrMessageTooLarge, l.max)
		}
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return strings.TrimRight(string(buf), "\r\n"), nil
			}
			return "", err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

// Next returns the next event with data. Comments (keep-alives) and events
// without data are skipped.
func (er *EventReader) Next() (Event, error) {
	var ev Event
	var data []byte
	hasData := false
	for {
		line, err := er.lr.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				ev.Data = data
				return ev, nil
			}
			return Event{}, err
		}
		if line == "" {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Name = value
		case "id":
			ev.ID = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > er.lr.max {
				return Event{}, fmt.Errorf("%w: event over %d bytes", ErrMessageTooLarge, er.lr.max)
			}
			data = append(data, value...)
			hasData = true
		}
	}
}
