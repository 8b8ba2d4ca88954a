package mask

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaskMessage masks one JSON-RPC 2.0 message (request, notification or
// response; a batch array is accepted too) flowing to the client.
//
// Every string that leaves is scanned: values, object keys, and protocol
// fields such as "uri", "uriTemplate", "mimeType" and "nextCursor", which are
// masked in place like any string. A masked key that would collide with
// another key of its object gets a deterministic suffix ("~2", "~3", … in
// document order), so keys stay unique. A few fields cannot change without
// breaking the protocol: the message's "jsonrpc", "id" and "method", and
// "progressToken", "requestId", "progress" and "total" of its params or
// result. They are scanned too, and a finding there withholds the whole
// message: MaskMessage returns a *WithheldError.
//
// Binary content (the base64 "data" of image and audio content and the
// "blob" of resource contents beside a string "uri") is decoded: bytes that
// are UTF-8 text are masked like a string and re-encoded; other bytes are
// treated as the profile's binary mode says (see ProfileConfig.Binary).
// A value that is not valid base64 is masked as text.
//
// A string under a key that names a secret ("password", "client_secret",
// "api_key", "Authorization", …) is masked whole. A number that is a payment
// card number becomes a masked string.
//
// Only the masked values change: when nothing is masked the result is raw
// itself, byte for byte. Invalid JSON is an error and nothing is returned;
// invalid UTF-8 inside strings is replaced by U+FFFD. Nesting depth is not
// limited and costs no stack.
func (m *Masker) MaskMessage(raw []byte) ([]byte, Counts, error) {
	return m.maskJSON(raw, true)
}

// MaskJSONValue masks every string of an arbitrary JSON value, keys
// included, such as tool arguments before they are logged. Strings under
// secret key names are masked whole and card numbers written as numbers
// become masked strings. Like MaskMessage, it returns raw itself when
// nothing is masked.
func (m *Masker) MaskJSONValue(raw []byte) ([]byte, Counts, error) {
	return m.maskJSON(raw, false)
}

// SyntaxError reports invalid JSON. It carries the byte offset only, never
// the content, which may be the very secret being masked.
type SyntaxError struct {
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("mask: invalid JSON at byte %d: %s", e.Offset, e.msg)
}

type jsonObj struct {
	start, end int
	parent     int    // enclosing object, -1 for none or an array
	key        string // key of this object in its parent object
	msg        bool   // a JSON-RPC message
	params     bool   // the params or result of a message
	typ        string // value of the "type" member
	uri        int    // value index of the "uri" member, or -1
	data, blob int    // value index of the "data" and "blob" string members, or -1
}

type jsonVal struct {
	start, end int // raw span, quotes included
	obj        int // enclosing object, -1 for an array element or the root
	key        string
	str        bool // string, else number
	esc        bool // has escapes
	bad        bool // has invalid UTF-8
	done       bool // handled as binary content
}

// jsonKey is an object key: its raw span (quotes included) and object.
type jsonKey struct {
	start, end int
	obj        int
	text       string // decoded
	bad        bool   // has invalid UTF-8
}

type frame struct {
	obj   int // object index, -1 for an array
	key   string
	array bool
}

type jparser struct {
	s     string
	pos   int
	objs  []jsonObj
	vals  []jsonVal
	keys  []jsonKey
	stack []frame
	edits []edit
}

type edit struct {
	start, end int
	repl       string
}

func (p *jparser) fail(msg string) error { return &SyntaxError{Offset: p.pos, msg: msg} }

func (p *jparser) ws() {
	s := p.s
	for p.pos < len(s) {
		switch s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (m *Masker) maskJSON(raw []byte, protocol bool) ([]byte, Counts, error) {
	p := m.getParser(raw)
	defer m.putParser(p)
	if err := p.parse(protocol); err != nil {
		return nil, nil, err
	}
	counts, err := m.decide(p, protocol)
	if err != nil {
		return nil, nil, err
	}
	if len(p.edits) == 0 {
		return raw, nil, nil
	}
	sort.Slice(p.edits, func(i, j int) bool { return p.edits[i].start < p.edits[j].start })
	out := make([]byte, 0, len(raw)+len(raw)/8)
	last := 0
	for _, e := range p.edits {
		if e.start < last {
			continue // inside a replaced object
		}
		out = append(out, raw[last:e.start]...)
		out = append(out, e.repl...)
		last = e.end
	}
	out = append(out, raw[last:]...)
	return out, counts, nil
}

// maxPooledEntries bounds the tables a recycled parser keeps, so that one
// huge message does not pin its memory for the masker's lifetime.
const maxPooledEntries = 1 << 14

func (m *Masker) getParser(raw []byte) *jparser {
	p, _ := m.parsers.Get().(*jparser)
	if p == nil {
		p = &jparser{}
	}
	// The parser reads raw in place rather than copying it: nothing it
	// records outlives the call (edits and errors are built from copies),
	// and the caller does not change raw while MaskMessage runs.
	p.s, p.pos = unsafe.String(unsafe.SliceData(raw), len(raw)), 0
	return p
}

// putParser clears p (it holds pieces of the message, which may be
// secrets) and recycles it.
func (m *Masker) putParser(p *jparser) {
	if max(cap(p.objs), cap(p.vals), cap(p.keys), cap(p.stack), cap(p.edits)) > maxPooledEntries {
		return
	}
	clear(p.objs)
	clear(p.vals)
	clear(p.keys)
	clear(p.stack)
	clear(p.edits)
	*p = jparser{objs: p.objs[:0], vals: p.vals[:0], keys: p.keys[:0], stack: p.stack[:0], edits: p.edits[:0]}
	m.parsers.Put(p)
}

// parse tokenises the whole value iteratively, recording objects and scalar
// values with their context.
func (p *jparser) parse(protocol bool) error {
	p.ws()
	for {
		opened, err := p.value(protocol)
		if err != nil {
			return err
		}
		if opened {
			continue
		}
		done, err := p.after()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// value reads the value at pos. It reports whether it opened a non-empty
// container, whose first element comes next.
func (p *jparser) value(protocol bool) (bool, error) {
	s := p.s
	if p.pos >= len(s) {
		return false, p.fail("unexpected end of input")
	}
	parent, key := -1, ""
	if n := len(p.stack); n > 0 && !p.stack[n-1].array {
		parent, key = p.stack[n-1].obj, p.stack[n-1].key
	}
	switch c := s[p.pos]; {
	case c == '{':
		o := jsonObj{start: p.pos, parent: parent, key: key, uri: -1, data: -1, blob: -1}
		if protocol {
			depth := len(p.stack) + 1
			o.msg = depth == 1 || depth == 2 && p.stack[0].array
			o.params = parent >= 0 && p.objs[parent].msg && (key == "params" || key == "result")
		}
		p.objs = append(p.objs, o)
		p.stack = append(p.stack, frame{obj: len(p.objs) - 1})
		p.pos++
		p.ws()
		if p.pos < len(s) && s[p.pos] == '}' {
			p.pos++
			p.closeObj()
			return false, nil
		}
		return true, p.key()
	case c == '[':
		p.stack = append(p.stack, frame{obj: -1, array: true})
		p.pos++
		p.ws()
		if p.pos < len(s) && s[p.pos] == ']' {
			p.pos++
			p.stack = p.stack[:len(p.stack)-1]
			return false, nil
		}
		return true, nil
	case c == '"':
		v := jsonVal{start: p.pos, obj: parent, key: key, str: true}
		var err error
		if v.end, v.esc, v.bad, err = p.str(); err != nil {
			return false, err
		}
		if parent >= 0 {
			o := &p.objs[parent]
			switch key {
			case "type":
				if !v.esc {
					o.typ = s[v.start+1 : v.end-1]
				}
			case "uri":
				o.uri = len(p.vals)
			case "data":
				o.data = len(p.vals)
			case "blob":
				o.blob = len(p.vals)
			}
		}
		p.vals = append(p.vals, v)
	case c == '-' || isDigit(c):
		v := jsonVal{start: p.pos, obj: parent, key: key}
		if err := p.number(); err != nil {
			return false, err
		}
		v.end = p.pos
		p.vals = append(p.vals, v)
	case strings.HasPrefix(s[p.pos:], "true"):
		p.pos += 4
	case strings.HasPrefix(s[p.pos:], "false"):
		p.pos += 5
	case strings.HasPrefix(s[p.pos:], "null"):
		p.pos += 4
	default:
		return false, p.fail("unexpected character")
	}
	return false, nil
}

// after consumes what follows a complete value: closers, then a comma (and
// the next key) or the end of input. It reports the end of input.
func (p *jparser) after() (bool, error) {
	s := p.s
	for {
		p.ws()
		n := len(p.stack)
		if n == 0 {
			if p.pos != len(s) {
				return false, p.fail("data after the value")
			}
			return true, nil
		}
		if p.pos >= len(s) {
			return false, p.fail("unexpected end of input")
		}
		top := &p.stack[n-1]
		switch c := s[p.pos]; {
		case c == ',':
			p.pos++
			p.ws()
			if top.array {
				return false, nil
			}
			return false, p.key()
		case c == '}' && !top.array:
			p.pos++
			p.closeObj()
		case c == ']' && top.array:
			p.pos++
			p.stack = p.stack[:n-1]
		default:
			return false, p.fail("expected ',' or a closing bracket")
		}
	}
}

// key reads an object key and its colon.
func (p *jparser) key() error {
	s := p.s
	if p.pos >= len(s) || s[p.pos] != '"' {
		return p.fail("expected a string key")
	}
	start := p.pos
	end, esc, bad, err := p.str()
	if err != nil {
		return err
	}
	k := s[start+1 : end-1]
	if esc || bad {
		k = decodeString(k, esc)
	}
	top := &p.stack[len(p.stack)-1]
	p.keys = append(p.keys, jsonKey{start: start, end: end, obj: top.obj, text: k, bad: bad})
	top.key = k
	p.ws()
	if p.pos >= len(s) || s[p.pos] != ':' {
		return p.fail("expected ':'")
	}
	p.pos++
	p.ws()
	return nil
}

func (p *jparser) closeObj() {
	n := len(p.stack)
	p.objs[p.stack[n-1].obj].end = p.pos
	p.stack = p.stack[:n-1]
}

// str scans the string at pos and returns its end (after the closing quote),
// whether it has escapes and whether it has invalid UTF-8.
func (p *jparser) str() (end int, esc, bad bool, err error) {
	s := p.s
	i := p.pos + 1
	nonASCII := false
	for {
		i = skipPlain(s, i)
		if i >= len(s) {
			p.pos = i
			return 0, false, false, p.fail("unterminated string")
		}
		c := s[i]
		switch {
		case c == '"':
			if nonASCII {
				bad = !utf8.ValidString(s[p.pos+1 : i])
			}
			p.pos = i + 1
			return i + 1, esc, bad, nil
		case c == '\\':
			esc = true
			if i+1 >= len(s) {
				p.pos = i
				return 0, false, false, p.fail("unterminated string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
					p.pos = i
					return 0, false, false, p.fail("invalid \\u escape")
				}
				i += 6
			default:
				p.pos = i
				return 0, false, false, p.fail("invalid escape")
			}
		case c < 0x20:
			p.pos = i
			return 0, false, false, p.fail("control character in string")
		default:
			if c >= 0x80 {
				nonASCII = true
			}
			i++
		}
	}
}

// Masks for skipPlain's eight-bytes-at-a-time test.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// skipPlain returns the offset of the first byte at or after i that a string
// scan must look at: a quote, a backslash, a control character or a byte of
// a multi-byte rune. It tests eight bytes at a time, so a long run of plain
// ASCII text costs a fraction of a byte-by-byte loop.
func skipPlain(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q := x ^ (swarOnes * '"')
		b := x ^ (swarOnes * '\\')
		special := (q - swarOnes) &^ q
		special |= (b - swarOnes) &^ b
		special |= (x - swarOnes*0x20) &^ x
		special |= x
		if special&swarHighs != 0 {
			break
		}
	}
	for i < len(s) {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
		i++
	}
	return i
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// number scans a JSON number at pos.
func (p *jparser) number() error {
	s := p.s
	i := p.pos
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && isDigit(s[i]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		p.pos = i
		return p.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			p.pos = i
			return p.fail("invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			p.pos = i
			return p.fail("invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	p.pos = i
	return nil
}

// maskSecretField masks the whole value of a key that names a secret. It
// returns nil Counts when the key is not such a key or the value is empty,
// a placeholder or already masked.
func (m *Masker) maskSecretField(key, v string) (string, Counts) {
	if !m.enabled[detSecretAssignment] && !m.enabled[detAWSSecretKey] {
		return v, nil
	}
	kind := keyKind(key)
	if kind == keyNone {
		return v, nil
	}
	prefix, val := "", v
	if kind == keyAuthorization {
		if sp := strings.IndexByte(v, ' '); sp > 0 && allLetters(v[:sp]) {
			prefix, val = v[:sp+1], v[sp+1:]
		}
	}
	if !secretValue(val) || maskTokenLen(val) > 0 || strings.ContainsAny(val, "\n") {
		return v, nil
	}
	det := detSecretAssignment
	if kind == keyAWSSecret && len(val) == 40 && b64Only(val) && m.enabled[detAWSSecretKey] {
		det = detAWSSecretKey
	}
	if !m.enabled[det] {
		return v, nil
	}
	return prefix + m.replacement(det, nil, val), Counts{builtinNames[det]: 1}
}

func b64Only(s string) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cB64 == 0 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// decodeString decodes the inside of a JSON string literal known to be
// syntactically valid. Invalid UTF-8 and unpaired surrogates become U+FFFD.
func decodeString(raw string, esc bool) string {
	if !esc {
		return strings.ToValidUTF8(raw, "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			b.WriteString(strings.ToValidUTF8(raw[i:j], "\uFFFD"))
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := hex4(raw[i+2 : i+6]); utf16.DecodeRune(r, r2) != utf8.RuneError {
						b.WriteRune(utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			b.WriteByte(raw[i+1])
		}
		i += 2
	}
	return b.String()
}

func hex4(h string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := h[i]
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// quote encodes s (valid UTF-8) as a JSON string literal, escaping only what
// JSON requires.
func quote(s string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[last:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		last = i + 1
	}
	b.WriteString(s[last:])
	b.WriteByte('"')
	return b.String()
}
