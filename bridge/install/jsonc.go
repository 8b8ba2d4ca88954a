package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// This file is a small JSON (and JSONC: comments and trailing commas)
// parser that records where each object member sits in the source, so that
// an edit changes only the bytes of the member it adds, replaces or
// removes. Everything else in the file, comments, key order, indentation
// and number spelling included, stays byte for byte.

// maxDepth bounds nesting, so a hostile file cannot exhaust the stack.
const maxDepth = 512

// node is a parsed JSON value and its byte span [start, end) in the source.
type node struct {
	start, end int
	kind       byte // '{', '[', '"', '0' (number), 'l' (true, false, null)
	members    []member
}

// member is one "key": value pair of an object.
type member struct {
	keyStart int // offset of the key's opening quote
	key      string
	value    *node
	comma    int // offset of the comma after the value, or -1
}

// SyntaxError is a malformed configuration file, with the 1-based line and
// column where parsing stopped.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

type parser struct {
	src   []byte
	pos   int
	jsonc bool
	depth int
}

// parseDocument parses src, which must hold one JSON value and nothing
// else but whitespace (and comments when jsonc is set).
func parseDocument(src []byte, jsonc bool) (*node, error) {
	p := &parser{src: src, jsonc: jsonc}
	if err := p.space(); err != nil {
		return nil, err
	}
	n, err := p.value()
	if err != nil {
		return nil, err
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos != len(src) {
		return nil, p.errorf("unexpected %s after the end of the document", p.describe())
	}
	return n, nil
}

func (p *parser) errorf(format string, args ...any) error {
	line, col := 1, 1
	for _, c := range p.src[:min(p.pos, len(p.src))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// describe names the byte at the current position for an error message,
// without quoting more of the file than one character.
func (p *parser) describe() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	c := p.src[p.pos]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// space skips whitespace and, in JSONC, comments.
func (p *parser) space() error {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '/' && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '/' || p.src[p.pos+1] == '*'):
			if !p.jsonc {
				return p.errorf("comments are not allowed in this file")
			}
			if p.src[p.pos+1] == '/' {
				i := bytes.IndexByte(p.src[p.pos:], '\n')
				if i < 0 {
					p.pos = len(p.src)
				} else {
					p.pos += i
				}
				continue
			}
			i := bytes.Index(p.src[p.pos+2:], []byte("*/"))
			if i < 0 {
				return p.errorf("unterminated comment")
			}
			p.pos += 2 + i + 2
		default:
			return nil
		}
	}
	return nil
}

func (p *parser) value() (*node, error) {
	if p.pos >= len(p.src) {
		return nil, p.errorf("unexpected end of file")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		start := p.pos
		if _, err := p.str(); err != nil {
			return nil, err
		}
		return &node{start: start, end: p.pos, kind: '"'}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.src[p.pos:], []byte(lit)) {
				start := p.pos
				p.pos += len(lit)
				return &node{start: start, end: p.pos, kind: 'l'}, nil
			}
		}
	}
	return nil, p.errorf("unexpected %s, expected a value", p.describe())
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested more than %d levels deep", maxDepth)
	}
	return nil
}

func (p *parser) object() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	n := &node{start: p.pos, kind: '{'}
	p.pos++ // {
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			if len(n.members) > 0 && n.members[len(n.members)-1].comma >= 0 && !p.jsonc {
				return nil, p.errorf("trailing comma before \"}\"")
			}
			p.pos++
			n.end = p.pos
			return n, nil
		}
		if len(n.members) > 0 && n.members[len(n.members)-1].comma < 0 {
			return nil, p.errorf("unexpected %s, expected \",\" or \"}\"", p.describe())
		}
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errorf("unexpected %s, expected a quoted key", p.describe())
		}
		m := member{keyStart: p.pos, comma: -1}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		m.key = key
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("unexpected %s, expected \":\"", p.describe())
		}
		p.pos++
		if err := p.space(); err != nil {
			return nil, err
		}
		if m.value, err = p.value(); err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			m.comma = p.pos
			p.pos++
		}
		n.members = append(n.members, m)
	}
}

func (p *parser) array() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	n := &node{start: p.pos, kind: '['}
	p.pos++ // [
	comma, count := false, 0
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			if comma && !p.jsonc {
				return nil, p.errorf("trailing comma before \"]\"")
			}
			p.pos++
			n.end = p.pos
			return n, nil
		}
		if count > 0 && !comma {
			return nil, p.errorf("unexpected %s, expected \",\" or \"]\"", p.describe())
		}
		if _, err := p.value(); err != nil {
			return nil, err
		}
		count++
		if err := p.space(); err != nil {
			return nil, err
		}
		comma = p.pos < len(p.src) && p.src[p.pos] == ','
		if comma {
			p.pos++
		}
	}
}

// str parses a string at p.pos and returns its decoded value.
func (p *parser) str() (string, error) {
	start := p.pos
	p.pos++ // "
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '"':
			p.pos++
			var s string
			if err := json.Unmarshal(p.src[start:p.pos], &s); err != nil {
				p.pos = start
				return "", p.errorf("invalid string")
			}
			return s, nil
		case c == '\\':
			p.pos += 2
		case c < 0x20:
			return "", p.errorf("control character in a string (a missing closing quote?)")
		default:
			p.pos++
		}
	}
	p.pos = start
	return "", p.errorf("unterminated string")
}

func (p *parser) number() (*node, error) {
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("+-.eE0123456789", p.src[p.pos]) >= 0 {
		p.pos++
	}
	if !json.Valid(p.src[start:p.pos]) {
		p.pos = start
		return nil, p.errorf("invalid number")
	}
	return &node{start: start, end: p.pos, kind: '0'}, nil
}

// find returns the index of the last member named key (the one JSON
// decoders honour), or -1.
func (n *node) find(key string) int {
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return i
		}
	}
	return -1
}
