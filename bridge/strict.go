package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Strict decoding.
//
// The gateway decides on a message and forwards its bytes to an upstream
// that reads them with its own JSON parser (JavaScript's JSON.parse,
// Python's json, Go's encoding/json). A message that two parsers can read
// differently lets an attacker show the gateway one call and run another,
// so every message bridge acts on is read by one strict decoding that
// refuses anything a mainstream parser could read another way:
//
//   - a member name that occurs twice in one object, at any depth, compared
//     after unescaping ("name" and "\u006eame" are the same name): parsers
//     disagree on which one wins;
//   - two member names in one object that are equal under Unicode case
//     folding ("name" and "NAME", "arguments" and "Arguments"): Go's
//     encoding/json matches names case-insensitively and keeps the last;
//   - a protocol member spelt in another case ("METHOD", "Name" in params),
//     even alone: a case-insensitive parser reads it as the member, a
//     case-sensitive one does not;
//   - the member name "__proto__": JavaScript code that copies objects
//     turns it into the prototype, where property lookups find it;
//   - invalid UTF-8 and unpaired surrogate escapes: parsers replace, keep or
//     reject them;
//   - a number outside the range of a float64: JavaScript reads Infinity.
//
// What passes is unambiguous, so the original bytes are forwarded: what was
// decided is what runs.

// ErrAmbiguous is wrapped by every error the strict decoding returns for a
// message that is well-formed JSON but could be read more than one way.
var ErrAmbiguous = errors.New("ambiguous JSON")

// ParseError is the error Parse returns. It carries the message's id when
// the id itself could be read unambiguously, so that the request can still
// be answered with an error.
type ParseError struct {
	// ID is the message's id, compacted, or nil when it could not be read.
	ID []byte
	// Code is the JSON-RPC error code that fits: CodeParseError for bytes
	// that are not JSON, CodeInvalidRequest otherwise.
	Code int
	// Ambiguous is set when the message is well-formed JSON that the strict
	// decoding refused because parsers could read it differently.
	Ambiguous bool
	msg       string
}

func (e *ParseError) Error() string { return ErrInvalidMessage.Error() + ": " + e.msg }

// Unwrap lets errors.Is find ErrInvalidMessage (and ErrAmbiguous).
func (e *ParseError) Unwrap() []error {
	if e.Ambiguous || e.Code == codeAmbiguous {
		return []error{ErrInvalidMessage, ErrAmbiguous}
	}
	return []error{ErrInvalidMessage}
}

// codeAmbiguous marks a ParseError from the strict checks before its code
// is settled; it never reaches the wire.
const codeAmbiguous = 1

// envelopeNames are the members of a JSON-RPC message.
var envelopeNames = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// paramsNames are the protocol members of MCP request params that the
// gateway reads; a case variant of one is refused even when alone.
var paramsNames = []string{"name", "arguments", "uri", "_meta", "ref", "argument", "context", "cursor", "taskId", "task", "requestId", "progressToken", "level"}

// refNames are the members of a completion reference.
var refNames = []string{"type", "name", "uri"}

// errorNames are the members of a JSON-RPC error object.
var errorNames = []string{"code", "message", "data"}

// knownNames returns the protocol member names of the object at path, the
// names of the members that lead to it from the message's top level.
func knownNames(path []string) []string {
	switch {
	case len(path) == 0:
		return envelopeNames
	case len(path) == 1 && path[0] == "params":
		return paramsNames
	case len(path) == 1 && path[0] == "error":
		return errorNames
	case len(path) == 2 && path[0] == "params" && path[1] == "ref":
		return refNames
	}
	return nil
}

// member is a top-level member of a message: its name, raw value and the
// value's offset in the message.
type member struct {
	name  string
	value []byte
	off   int
}

// pooledDecoder is a jsontext decoder with its reader, reused because its
// buffers are worth keeping.
type pooledDecoder struct {
	r   bytes.Reader
	dec *jsontext.Decoder
}

// decoderPool holds idle pooledDecoders. It is a cache, not state: any
// decoder in it is reset before use.
var decoderPool = sync.Pool{New: func() any {
	p := &pooledDecoder{}
	p.dec = jsontext.NewDecoder(&p.r)
	return p
}}

// scanStrict reads b as one JSON value under the strict rules above and
// returns, when b is an object, its top-level members with their raw values.
func scanStrict(b []byte) ([]member, error) {
	pd := decoderPool.Get().(*pooledDecoder)
	pd.r.Reset(b)
	dec := pd.dec
	dec.Reset(&pd.r)
	defer func() {
		pd.r.Reset(nil)
		dec.Reset(&pd.r)
		decoderPool.Put(pd)
	}()
	s := &strictScanner{dec: dec, src: b}
	var top []member
	if dec.PeekKind() == '{' {
		if _, _, err := s.next(); err != nil {
			return nil, err
		}
		var err error
		top, err = s.members(envelopeNames, []string{}, true)
		if err != nil {
			return nil, err
		}
	} else if err := s.value(nil); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, &ParseError{Code: CodeParseError, msg: "more than one JSON value"}
	}
	return top, nil
}

// strictScanner walks one JSON value token by token. Member names are
// compared as slices of the input where they need no unescaping, so the
// walk allocates little.
type strictScanner struct {
	dec *jsontext.Decoder
	src []byte
	// names holds the names read so far in every open object, innermost
	// last; each object remembers where its names start.
	names [][]byte
}

// next reads one token and returns it with its bytes in the input.
func (s *strictScanner) next() (jsontext.Token, []byte, error) {
	before := s.dec.InputOffset()
	tok, err := s.dec.ReadToken()
	if err != nil {
		return tok, nil, syntaxError(err)
	}
	raw := bytes.TrimLeft(s.src[before:s.dec.InputOffset()], " \t\r\n,:")
	return tok, raw, nil
}

// value reads one value. path names the members that lead to it from the
// top level while they are all objects; it is nil where no protocol
// members are known.
func (s *strictScanner) value(path []string) error {
	tok, raw, err := s.next()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '{':
		var childPath []string
		known := knownNames(path)
		if known != nil {
			childPath = path
		}
		_, err := s.members(known, childPath, false)
		return err
	case '[':
		for s.dec.PeekKind() != ']' {
			if s.dec.PeekKind() == 0 {
				_, _, err := s.next()
				return orTruncated(err)
			}
			if err := s.value(nil); err != nil {
				return err
			}
		}
		_, _, err := s.next()
		return err
	case '0':
		// Only a number with an exponent or of great length can overflow.
		if bytes.ContainsAny(raw, "eE") || len(raw) > 300 {
			if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
				return ambiguous("a number is outside the range of a 64-bit float")
			}
		}
	}
	return nil
}

// foldSetThreshold is the member count past which an object's names are
// compared through a map of folded names instead of pairwise, so that an
// object with many members costs linear time.
const foldSetThreshold = 16

// members reads the members of an object whose '{' was just read, up to
// and including its '}'. known are the object's protocol member names and
// path the members that lead to it (nil below an array or an object with
// no protocol names). With keep, it returns each member's raw value.
func (s *strictScanner) members(known, path []string, keep bool) ([]member, error) {
	first := len(s.names)
	defer func() { s.names = s.names[:first] }()
	var folded map[string]struct{}
	var out []member
	for {
		switch s.dec.PeekKind() {
		case '}':
			_, _, err := s.next()
			return out, err
		case 0:
			_, _, err := s.next()
			return nil, orTruncated(err)
		}
		_, raw, err := s.next()
		if err != nil {
			return nil, err
		}
		name, err := memberName(raw)
		if err != nil {
			return nil, err
		}
		if err := checkName(name, known); err != nil {
			return nil, err
		}
		seen := s.names[first:]
		switch {
		case folded != nil:
			f := foldName(string(name))
			if _, dup := folded[f]; dup {
				return nil, duplicateFold(name)
			}
			folded[f] = struct{}{}
		case len(seen) >= foldSetThreshold:
			folded = make(map[string]struct{}, 2*len(seen))
			for _, prev := range seen {
				folded[foldName(string(prev))] = struct{}{}
			}
			f := foldName(string(name))
			if _, dup := folded[f]; dup {
				return nil, duplicateFold(name)
			}
			folded[f] = struct{}{}
		default:
			for _, prev := range seen {
				if bytes.EqualFold(prev, name) {
					return nil, duplicateFold(name)
				}
			}
		}
		s.names = append(s.names, name)
		start := s.dec.InputOffset()
		var child []string
		if path != nil {
			child = append(append(make([]string, 0, len(path)+1), path...), string(name))
		}
		if err := s.value(child); err != nil {
			return nil, err
		}
		if keep {
			span := s.src[start:s.dec.InputOffset()]
			raw := bytes.TrimLeft(span, " \t\r\n:")
			out = append(out, member{name: string(name), value: raw, off: int(start) + len(span) - len(raw)})
		}
	}
}

// memberName returns a name token's unescaped text: a slice of the input
// when it holds no escapes, else a copy.
func memberName(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, &ParseError{Code: CodeParseError, msg: "malformed member name"}
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	name, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return nil, ambiguous("a member name is not valid UTF-8")
	}
	return name, nil
}

func duplicateFold(name []byte) error {
	return ambiguous(fmt.Sprintf("two members of one object are named %q when case is ignored", printable(string(name))))
}

// orTruncated reports a decoder that stopped inside a value.
func orTruncated(err error) error {
	if err == nil {
		return &ParseError{Code: CodeParseError, msg: "truncated JSON"}
	}
	return err
}

// checkName refuses the member name "__proto__" and a name that is a
// protocol member of its object (known) spelt in another case.
func checkName(name []byte, known []string) error {
	if string(name) == "__proto__" {
		return ambiguous(`the member name "__proto__" is not accepted`)
	}
	for _, kn := range known {
		if string(name) != kn && bytes.EqualFold(name, []byte(kn)) {
			return ambiguous(fmt.Sprintf("member %q must be spelt %q", printable(string(name)), kn))
		}
	}
	return nil
}

// foldName maps a name to a form in which names equal under Unicode simple
// case folding (the equivalence Go's encoding/json and bytes.EqualFold
// use) are identical.
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// Upper case is the smallest rune of every ASCII letter's orbit,
		// as foldRune picks for the rest.
		for i := 0; i < len(s); i++ {
			if 'a' <= s[i] && s[i] <= 'z' {
				return asciiUpper(s)
			}
		}
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = append(out, foldRune(r))
	}
	return string(out)
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// foldRune returns the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

// printable shortens a name for an error message.
func printable(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func ambiguous(msg string) error {
	return &ParseError{Code: codeAmbiguous, msg: msg}
}

// syntaxError turns a jsontext error into a ParseError that says where,
// without echoing the input, which may hold secrets.
func syntaxError(err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			return ambiguous("a member name occurs twice in one object")
		}
		// The invalid-UTF-8 and surrogate errors are internal to jsontext;
		// their text is stable and holds no input.
		if msg := se.Err.Error(); strings.Contains(msg, "UTF-8") || strings.Contains(msg, "surrogate") {
			return ambiguous("a string is not valid UTF-8 or holds an unpaired surrogate")
		}
		return &ParseError{Code: CodeParseError, msg: "malformed JSON at byte " + strconv.FormatInt(se.ByteOffset, 10)}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &ParseError{Code: CodeParseError, msg: "truncated JSON"}
	}
	return &ParseError{Code: CodeParseError, msg: "malformed JSON"}
}
