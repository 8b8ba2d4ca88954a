package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

	// Unreadable is set on the error response bridge puts in place of an
	// upstream answer that the strict decoding refused, so stages that
	// watch answers (tool pinning) can tell that one was withheld.
	Unreadable bool

	idKey string // CanonicalKey of ID
	// idStart and idEnd locate the id's value in Raw (idEnd 0: unknown).
	idStart, idEnd int

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

// ErrInvalidMessage is wrapped by every error Parse returns.
var ErrInvalidMessage = errors.New("invalid JSON-RPC message")

// Parse decodes one JSON-RPC 2.0 message under the strict decoding
// (strict.go). It rejects anything that is not a single well-formed
// request, notification or response object, and anything another JSON
// parser could read differently. The returned Message keeps b as its Raw
// bytes; the caller must not modify b afterwards. Errors are *ParseError.
func Parse(b []byte) (*Message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, &ParseError{Code: CodeInvalidRequest, msg: "empty"}
	}
	if b[0] != '{' {
		return nil, &ParseError{Code: CodeInvalidRequest, msg: "not a JSON object"}
	}
	members, err := scanStrict(b)
	if err != nil {
		id, _ := topLevelID(b)
		return nil, settle(err, id)
	}
	var env struct{ jsonrpc, id, method, params, result, errObj []byte }
	var idStart, idEnd int
	for _, mb := range members {
		switch mb.name {
		case "jsonrpc":
			env.jsonrpc = mb.value
		case "id":
			env.id = mb.value
			idStart, idEnd = mb.off, mb.off+len(mb.value)
		case "method":
			env.method = mb.value
		case "params":
			env.params = mb.value
		case "result":
			env.result = mb.value
		case "error":
			env.errObj = mb.value
		}
	}
	m := &Message{Raw: b}
	invalid := func(msg string) (*Message, error) {
		return nil, &ParseError{ID: m.ID, Code: CodeInvalidRequest, msg: msg}
	}
	if env.id != nil {
		id, key, err := parseID(env.id)
		if err != nil {
			return invalid(`"id" must be a string or a number`)
		}
		m.ID, m.idKey = id, key
		m.idStart, m.idEnd = idStart, idEnd
	}
	if v, ok := decodeString(env.jsonrpc); !ok || v != "2.0" {
		return invalid(`"jsonrpc" must be "2.0"`)
	}
	switch {
	case env.method != nil:
		v, ok := decodeString(env.method)
		if !ok || v == "" {
			return invalid(`"method" must be a non-empty string`)
		}
		m.Method = v
		if env.result != nil || env.errObj != nil {
			return invalid(`a request cannot carry "result" or "error"`)
		}
		if env.params != nil && !isNull(env.params) {
			if c := firstByte(env.params); c != '{' && c != '[' {
				return invalid(`"params" must be an object or array`)
			}
			m.Params = env.params
		}
		m.Kind = KindNotification
		if m.ID != nil {
			m.Kind = KindRequest
			if isNull(m.ID) {
				return invalid(`a request id cannot be null`)
			}
		}
	case env.result != nil || env.errObj != nil:
		if env.result != nil && env.errObj != nil {
			return invalid(`a response carries "result" or "error", not both`)
		}
		if m.ID == nil {
			return invalid(`a response needs an "id"`)
		}
		m.Kind = KindResponse
		m.Result = env.result
		if env.errObj != nil {
			we, ok := decodeWireError(env.errObj)
			if !ok {
				return invalid(`"error" must be an object with a numeric "code" and a string "message"`)
			}
			m.Error = we
		}
	default:
		return invalid(`neither a request ("method") nor a response ("result" or "error")`)
	}
	return m, nil
}

// settle gives a strict-decoding error its JSON-RPC code and the id of the
// message when that could be read.
func settle(err error, id json.RawMessage) error {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return &ParseError{ID: id, Code: CodeInvalidRequest, msg: "malformed JSON"}
	}
	out := *pe
	out.ID = id
	if out.Code == codeAmbiguous {
		out.Code = CodeInvalidRequest
		out.Ambiguous = true
	}
	return &out
}

// decodeString reads a raw JSON string; the bytes passed the strict scan.
func decodeString(raw []byte) (string, bool) {
	if firstByte(raw) != '"' {
		return "", false
	}
	var s string
	if jsonv2.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// decodeWireError reads a JSON-RPC error object.
func decodeWireError(raw []byte) (*WireError, bool) {
	var we struct {
		Code    *jsontext.Value `json:"code"`
		Message *string         `json:"message"`
		Data    jsontext.Value  `json:"data"`
	}
	if firstByte(raw) != '{' || jsonv2.Unmarshal(raw, &we) != nil || we.Code == nil || we.Message == nil {
		return nil, false
	}
	var code float64
	if jsonv2.Unmarshal(*we.Code, &code) != nil || code != float64(int(code)) {
		return nil, false
	}
	out := &WireError{Code: int(code), Message: *we.Message}
	if len(we.Data) > 0 {
		out.Data = json.RawMessage(we.Data)
	}
	return out, true
}

// parseID validates a JSON-RPC id (string, number or null) and returns it
// compacted, with its canonical key: ids equal by value (7, 7.0 and 7e0;
// "s1" and "\u0073\u0031") have the same key, as a JavaScript or Python
// upstream reads them as the same id.
func parseID(raw json.RawMessage) (json.RawMessage, string, error) {
	switch firstByte(raw) {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return nil, "", errors.New("bad id")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, "", errors.New("bad id")
	}
	id := buf.Bytes()
	key, ok := CanonicalKey(id)
	if !ok {
		return nil, "", errors.New("bad id")
	}
	return id, key, nil
}

// CanonicalKey returns a key under which JSON ids and progress tokens equal
// by value are equal: a string by its decoded value, a number by the
// float64 a JavaScript upstream reads it as (so 7, 7.0, 7e0 and -0/0
// coincide, as do integers past 2^53 that JavaScript cannot tell apart).
// ok is false for anything but a string, a number or null.
func CanonicalKey(raw []byte) (string, bool) {
	switch c := firstByte(raw); {
	case c == '"':
		s, ok := decodeString(raw)
		return "s" + s, ok
	case c == 'n':
		return "null", isNull(raw)
	case c == '-' || ('0' <= c && c <= '9'):
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
		if err != nil {
			return "", false
		}
		if f == 0 {
			f = 0 // -0 is 0
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

// IDKey returns a map key for the message's id: ids equal by value have
// equal keys (see CanonicalKey), so no response can be matched to a
// request other than its own, and a second request whose id aliases a
// pending one is refused as a duplicate.
func (m *Message) IDKey() string {
	if m.idKey != "" || m.ID == nil {
		return m.idKey
	}
	key, _ := CanonicalKey(m.ID)
	return key
}

// ParseBatch decodes a body that holds one message or, as protocol version
// 2025-03-26 allows, a JSON array of messages. The whole body is read under
// the strict decoding first, so an ambiguity anywhere refuses the batch.
func ParseBatch(b []byte) ([]*Message, error) {
	b = bytes.TrimSpace(b)
	if firstByte(b) != '[' {
		m, err := Parse(b)
		if err != nil {
			return nil, err
		}
		return []*Message{m}, nil
	}
	if _, err := scanStrict(b); err != nil {
		return nil, settle(err, nil)
	}
	var items []jsontext.Value
	if err := jsonv2.Unmarshal(b, &items); err != nil {
		return nil, &ParseError{Code: CodeParseError, msg: "malformed JSON"}
	}
	if len(items) == 0 {
		return nil, &ParseError{Code: CodeInvalidRequest, msg: "empty batch"}
	}
	msgs := make([]*Message, 0, len(items))
	for i, it := range items {
		m, err := Parse(it)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.msg = fmt.Sprintf("batch item %d: %s", i, pe.msg)
				return nil, pe
			}
			return nil, err
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
	key, _ := CanonicalKey(id)
	return &Message{Raw: b, Kind: KindResponse, ID: id, idKey: key, Error: &WireError{Code: code, Message: message}}
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
		Meta map[string]jsontext.Value `json:"_meta"`
	}
	if jsonv2.Unmarshal(m.Params, &p) != nil || p.Meta == nil {
		return nil
	}
	meta := make(map[string]json.RawMessage, len(p.Meta))
	for k, v := range p.Meta {
		meta[k] = json.RawMessage(v)
	}
	return meta
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
