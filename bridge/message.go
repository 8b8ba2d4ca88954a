package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Kind says what a JSON-RPC message is.
type Kind int

// The kinds of JSON-RPC message.
const (
	KindRequest Kind = iota + 1
	KindNotification
	KindResponse
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "unknown"
}

// DefaultMaxMessageBytes bounds one JSON-RPC message on every transport.
// Larger messages are refused rather than buffered.
const DefaultMaxMessageBytes = 8 << 20

// Standard JSON-RPC error codes, and the server-error codes bridge uses.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeUnavailable means the gateway or the upstream could not be reached.
	CodeUnavailable = -32000
	// CodeRefused means bridge refused the message (policy, audit, size).
	CodeRefused = -32001
)

// Message is one JSON-RPC 2.0 message. Raw holds the exact bytes that
// arrived; the other fields are parsed from them and are read-only. A relay
// forwards Raw, so messages pass through unchanged.
type Message struct {
	Raw    json.RawMessage
	Kind   Kind
	ID     json.RawMessage // requests and responses; compacted
	Method string          // requests and notifications
	Params json.RawMessage // requests and notifications; may be nil
	Result json.RawMessage // responses
	Error  *WireError      // error responses

	derivedMu sync.Mutex
	derived   map[any]any
}

// Derived returns a value computed from the message, computing it once:
// several pipeline stages need the same decoded view of a message's params,
// and decoding it for each was a measurable share of the gateway's CPU. key
// identifies the derivation (use an unexported type); compute must depend
// only on the message, which is immutable.
//
// compute runs without the message's lock held, so it may itself use
// Derived; two concurrent first calls may both compute, and the first
// stored value wins.
func (m *Message) Derived(key any, compute func() any) any {
	m.derivedMu.Lock()
	v, ok := m.derived[key]
	m.derivedMu.Unlock()
	if ok {
		return v
	}
	v = compute()
	m.derivedMu.Lock()
	defer m.derivedMu.Unlock()
	if prev, ok := m.derived[key]; ok {
		return prev
	}
	if m.derived == nil {
		m.derived = map[any]any{}
	}
	m.derived[key] = v
	return v
}

// WireError is the error object of a JSON-RPC error response.
type WireError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// envelope is the decoding shape of a message. Fields are RawMessage so that
// Parse can tell an absent member from a null one.
type envelope struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// ErrInvalidMessage is wrapped by every error Parse returns.
var ErrInvalidMessage = errors.New("invalid JSON-RPC message")

// Parse decodes one JSON-RPC 2.0 message. It rejects anything that is not a
// single well-formed request, notification or response object. The returned
// Message keeps b as its Raw bytes; the caller must not modify b afterwards.
func Parse(b []byte) (*Message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidMessage)
	}
	if b[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidMessage, jsonErrorSummary(err))
	}
	if string(env.JSONRPC) != `"2.0"` {
		return nil, fmt.Errorf(`%w: "jsonrpc" must be "2.0"`, ErrInvalidMessage)
	}
	m := &Message{Raw: b}
	if env.ID != nil {
		id, err := parseID(env.ID)
		if err != nil {
			return nil, err
		}
		m.ID = id
	}
	switch {
	case env.Method != nil:
		if err := json.Unmarshal(env.Method, &m.Method); err != nil || m.Method == "" {
			return nil, fmt.Errorf(`%w: "method" must be a non-empty string`, ErrInvalidMessage)
		}
		if env.Result != nil || env.Error != nil {
			return nil, fmt.Errorf(`%w: a request cannot carry "result" or "error"`, ErrInvalidMessage)
		}
		if env.Params != nil && !isNull(env.Params) {
			if c := firstByte(env.Params); c != '{' && c != '[' {
				return nil, fmt.Errorf(`%w: "params" must be an object or array`, ErrInvalidMessage)
			}
			m.Params = env.Params
		}
		m.Kind = KindNotification
		if m.ID != nil {
			m.Kind = KindRequest
			if isNull(m.ID) {
				return nil, fmt.Errorf(`%w: a request id cannot be null`, ErrInvalidMessage)
			}
		}
	case env.Result != nil || env.Error != nil:
		if env.Result != nil && env.Error != nil {
			return nil, fmt.Errorf(`%w: a response carries "result" or "error", not both`, ErrInvalidMessage)
		}
		if m.ID == nil {
			return nil, fmt.Errorf(`%w: a response needs an "id"`, ErrInvalidMessage)
		}
		m.Kind = KindResponse
		m.Result = env.Result
		if env.Error != nil {
			var we WireError
			if err := json.Unmarshal(env.Error, &we); err != nil {
				return nil, fmt.Errorf(`%w: "error" must be an object with "code" and "message"`, ErrInvalidMessage)
			}
			m.Error = &we
		}
	default:
		return nil, fmt.Errorf(`%w: neither a request ("method") nor a response ("result" or "error")`, ErrInvalidMessage)
	}
	return m, nil
}

// parseID validates a JSON-RPC id (string, number or null) and returns it compacted.
func parseID(raw json.RawMessage) (json.RawMessage, error) {
	switch firstByte(raw) {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return nil, fmt.Errorf(`%w: "id" must be a string or a number`, ErrInvalidMessage)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf(`%w: bad "id"`, ErrInvalidMessage)
	}
	return buf.Bytes(), nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

// jsonErrorSummary returns the position of a JSON syntax error without
// echoing the input, which may hold secrets.
func jsonErrorSummary(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("member %q has the wrong type", te.Field)
	}
	return "malformed JSON"
}

// IDKey returns a map key for the message's id.
func (m *Message) IDKey() string { return string(m.ID) }

// ParseBatch decodes a body that holds one message or, as protocol version
// 2025-03-26 allows, a JSON array of messages.
func ParseBatch(b []byte) ([]*Message, error) {
	b = bytes.TrimSpace(b)
	if firstByte(b) != '[' {
		m, err := Parse(b)
		if err != nil {
			return nil, err
		}
		return []*Message{m}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidMessage, jsonErrorSummary(err))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidMessage)
	}
	msgs := make([]*Message, 0, len(items))
	for i, it := range items {
		m, err := Parse(it)
		if err != nil {
			return nil, fmt.Errorf("batch item %d: %w", i, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// NewRequest builds a request message.
func NewRequest(id json.RawMessage, method string, params any) (*Message, error) {
	return build(map[string]any{"jsonrpc": "2.0", "id": id, "method": method}, params)
}

// NewNotification builds a notification message.
func NewNotification(method string, params any) (*Message, error) {
	return build(map[string]any{"jsonrpc": "2.0", "method": method}, params)
}

// NewResult builds a success response to the request with the given id.
func NewResult(id json.RawMessage, result any) (*Message, error) {
	if id == nil {
		id = json.RawMessage("null")
	}
	return mustParse(json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  any             `json:"result"`
	}{"2.0", id, result}))
}

// NewError builds an error response to the request with the given id. A nil
// id (the request could not be read) is sent as null.
func NewError(id json.RawMessage, code int, message string) *Message {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   WireError       `json:"error"`
	}{"2.0", id, WireError{Code: code, Message: message}})
	if err != nil {
		// Only an invalid id can fail, and ids come from Parse.
		panic("bridge: NewError: " + err.Error())
	}
	return &Message{Raw: b, Kind: KindResponse, ID: id, Error: &WireError{Code: code, Message: message}}
}

func build(fields map[string]any, params any) (*Message, error) {
	if params != nil {
		fields["params"] = params
	}
	return mustParse(json.Marshal(fields))
}

func mustParse(b []byte, err error) (*Message, error) {
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// ParamsMeta returns params._meta of a request or notification, or nil.
func (m *Message) ParamsMeta() map[string]json.RawMessage {
	if len(m.Params) == 0 || firstByte(m.Params) != '{' {
		return nil
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(m.Params, &p) != nil {
		return nil
	}
	return p.Meta
}

// ProgressToken returns params._meta.progressToken, compacted, or nil.
func (m *Message) ProgressToken() json.RawMessage {
	meta := m.ParamsMeta()
	if meta == nil {
		return nil
	}
	tok, ok := meta["progressToken"]
	if !ok {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, tok) != nil {
		return nil
	}
	return buf.Bytes()
}
