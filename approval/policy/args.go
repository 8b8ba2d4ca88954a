package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// maxArgsDepth bounds the nesting of argument JSON. Deeper input is refused
// (and so fails closed) rather than risking deep recursion.
const maxArgsDepth = 128

// CanonicalJSON returns the canonical form of a JSON value in the manner
// of RFC 8785 (JCS), computed by jsontext.Value.Canonicalize: compact,
// object members sorted, strings in their minimal escaping. Unlike JCS,
// numbers keep their literal text: JCS would read them as IEEE 754
// doubles, merging 9007199254740993 with 9007199254740992 and 1 with 1.0,
// which an upstream may read as different values. Empty input (nil, or
// only whitespace) is treated as the empty object "{}", because an absent
// "arguments" member and "{}" mean the same call.
//
// It is as strict as the gateway's message decoding: duplicate object
// names, invalid UTF-8 and unpaired surrogate escapes are errors, because
// each is a way to make the gateway and an upstream read different
// arguments.
func CanonicalJSON(raw []byte) ([]byte, error) {
	if len(bytes.Trim(raw, " \t\r\n")) == 0 {
		return []byte("{}"), nil
	}
	v := jsontext.Value(bytes.Clone(raw))
	if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false), jsontext.CanonicalizeRawFloats(false)); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return v, nil
}

// ArgsDigest returns the lowercase hex SHA-256 of CanonicalJSON(raw),
// unkeyed. It is the digest of approval stores written before digests were
// keyed, kept so that they can be migrated; new digests come from a
// [Digester]. Arguments that cannot be canonicalized get the digest of the
// raw bytes prefixed with "invalid:", so they never collide with a valid
// canonical form.
func ArgsDigest(raw []byte) string {
	c, err := CanonicalJSON(raw)
	if err != nil {
		sum := sha256.Sum256(raw)
		return "invalid:" + hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:])
}

// parseArgs parses one JSON value into map[string]any, []any, string,
// json.Number (the literal text), bool and nil, reading it with the
// strict jsontext decoder (duplicate names, invalid UTF-8 and trailing
// data are errors) and refusing nesting deeper than maxArgsDepth. CEL
// reads json.Number as an int when the literal is an integer that fits in
// 64 bits, else a double.
func parseArgs(raw []byte) (any, error) {
	if len(bytes.Trim(raw, " \t\r\n")) == 0 {
		return map[string]any{}, nil
	}
	d := decoders.Get().(*pooledDecoder)
	defer decoders.Put(d)
	d.r.Reset(raw)
	d.dec.Reset(&d.r)
	defer d.r.Reset(nil) // the pool holds no caller's bytes
	v, err := decodeTree(&d.dec)
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, errors.New("invalid JSON: unexpected data after the JSON value")
	}
	return v, nil
}

// pooledDecoder is a reusable strict decoder: policy decisions run for
// every call, and a fresh jsontext.Decoder per call costs allocations.
type pooledDecoder struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(pooledDecoder) }}

// decodeTree reads the next value of dec as a tree.
func decodeTree(dec *jsontext.Decoder) (any, error) {
	if dec.StackDepth() >= maxArgsDepth {
		return nil, fmt.Errorf("invalid JSON: nested deeper than %d levels", maxArgsDepth)
	}
	switch dec.PeekKind() {
	case '0':
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return json.Number(v), nil
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return tok.Bool(), nil
	case '"':
		return tok.String(), nil
	case '[':
		a := []any{}
		for dec.PeekKind() != ']' {
			e, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, e)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return a, nil
	case '{':
		m := map[string]any{}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			k := tok.String() // a token is valid only until the next read
			e, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			m[k] = e
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return m, nil
	}
	return nil, errors.New("invalid JSON: unexpected token")
}

// appendCanonical appends the canonical encoding of a tree built by
// parseArgs.
func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k])
		}
		return append(b, '}')
	}
	panic(fmt.Sprintf("policy: unexpected JSON node %T", v)) // unreachable: parseArgs builds only the types above
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendLeafText appends, lowercased and each followed by a NUL, every
// object key, string value and scalar literal in the tree. args_contain
// keywords are searched in this text, so a keyword never spans two values.
func appendLeafText(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null\x00"...)
	case bool:
		return append(strconv.AppendBool(b, v), 0)
	case json.Number:
		return append(append(b, v...), 0)
	case string:
		return append(appendLower(b, v), 0)
	case []any:
		for _, e := range v {
			b = appendLeafText(b, e)
		}
	case map[string]any:
		for k, e := range v {
			b = append(appendLower(b, k), 0)
			b = appendLeafText(b, e)
		}
	}
	return b
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(b, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
