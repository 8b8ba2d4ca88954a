package mask

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WithheldError reports a message holding a finding in a field that masking
// cannot change without breaking the protocol (the message's id or method, a
// progress token, a cancelled request's id). Such a message must be
// withheld. The error names the field, never the value.
type WithheldError struct {
	// Field is the name of the protocol field, such as "id".
	Field string
	// Counts are the findings in that field.
	Counts Counts
}

func (e *WithheldError) Error() string {
	return "mask: the message holds sensitive data in its " + strconv.Quote(e.Field) +
		" field, which cannot be masked without breaking the protocol"
}

// decide masks the recorded keys and values and turns the findings into
// edits.
func (m *Masker) decide(p *jparser, protocol bool) (Counts, error) {
	var counts Counts
	var withheld [][2]int // objects replaced whole, in document order
	if protocol {
		withheld = m.decideBinary(p, &counts)
	}
	inside := func(pos int) bool {
		for _, w := range withheld {
			if pos > w[0] && pos < w[1] {
				return true
			}
		}
		return false
	}
	s := p.s
	for i := range p.vals {
		v := &p.vals[i]
		if v.done || len(withheld) > 0 && inside(v.start) {
			continue
		}
		var o *jsonObj
		if v.obj >= 0 {
			o = &p.objs[v.obj]
		}
		if protocol && o != nil && fixedField(o, v.key) {
			if err := m.checkFixed(p, v); err != nil {
				return nil, err
			}
			continue
		}
		if !v.str {
			if m.cardNumber(s[v.start:v.end]) {
				p.edits = append(p.edits, edit{start: v.start, end: v.end, repl: quote(m.replacement(detCreditCard, nil, s[v.start:v.end]))})
				counts.add(builtinNames[detCreditCard], 1)
			}
			continue
		}
		text := s[v.start+1 : v.end-1]
		if v.esc || v.bad {
			text = decodeString(text, v.esc)
		}
		out, found := text, false
		if o != nil {
			var c Counts
			if out, c = m.maskSecretField(v.key, text); c != nil {
				counts.Merge(c)
				found = true
			}
		}
		if !found {
			out, found = m.maskText(text, &counts)
		}
		if found || v.bad {
			p.edits = append(p.edits, edit{start: v.start, end: v.end, repl: quote(out)})
		}
	}
	m.decideKeys(p, &counts, inside)
	return counts, nil
}

// cardNumber reports whether the JSON number d is a payment card number the
// profile masks.
func (m *Masker) cardNumber(d string) bool {
	return m.enabled[detCreditCard] && len(d) >= 13 && len(d) <= 19 && allDigits(d) && validCard(d)
}

// fixedField reports whether key of object o holds protocol data that
// masking cannot change.
func fixedField(o *jsonObj, key string) bool {
	switch key {
	case "jsonrpc", "id", "method":
		return o.msg
	case "progressToken":
		return o.params || o.key == "_meta"
	case "requestId", "progress", "total":
		return o.params
	}
	return false
}

// checkFixed scans a fixed protocol field: a finding in a string withholds
// the message. Numbers are left alone: JSON-RPC ids and progress counts are
// often large random or sequential numbers, some of which pass a card check.
func (m *Masker) checkFixed(p *jparser, v *jsonVal) error {
	s := p.s
	if !v.str {
		return nil // a number here is an id or a count, not a card number
	}
	text := decodeString(s[v.start+1:v.end-1], v.esc)
	if _, c := m.MaskText(text); c != nil {
		return &WithheldError{Field: strings.Clone(v.key), Counts: c} // v.key points into the message
	}
	if v.bad {
		p.edits = append(p.edits, edit{start: v.start, end: v.end, repl: quote(text)})
	}
	return nil
}

// decideKeys masks object keys. A masked key that equals another key of its
// object, original or masked, gets the first free suffix "~2", "~3", … in
// document order, so that the object keeps its members apart.
func (m *Masker) decideKeys(p *jparser, counts *Counts, inside func(int) bool) {
	var changed map[int]bool // objects with a masked key
	var masked map[int]string
	for i := range p.keys {
		k := &p.keys[i]
		if inside(k.start) {
			continue
		}
		out, found := m.maskText(k.text, counts)
		if !found {
			if k.bad {
				p.edits = append(p.edits, edit{start: k.start, end: k.end, repl: quote(k.text)})
			}
			continue
		}
		if changed == nil {
			changed, masked = make(map[int]bool), make(map[int]string)
		}
		masked[i] = out
		changed[k.obj] = true
	}
	if changed == nil {
		return
	}
	taken := make(map[int]map[string]bool, len(changed))
	for i := range p.keys {
		k := &p.keys[i]
		if _, ok := masked[i]; !ok && changed[k.obj] {
			if taken[k.obj] == nil {
				taken[k.obj] = make(map[string]bool)
			}
			taken[k.obj][k.text] = true
		}
	}
	for i := range p.keys {
		out, ok := masked[i]
		if !ok {
			continue
		}
		k := &p.keys[i]
		t := taken[k.obj]
		if t == nil {
			t = make(map[string]bool)
			taken[k.obj] = t
		}
		name := out
		for n := 2; t[name]; n++ {
			name = out + "~" + strconv.Itoa(n)
		}
		t[name] = true
		p.edits = append(p.edits, edit{start: k.start, end: k.end, repl: quote(name)})
	}
}

// decideBinary handles binary content: image and audio "data", and the
// "blob" of resource contents. It returns the spans of the objects it
// replaced with a note.
func (m *Masker) decideBinary(p *jparser, counts *Counts) [][2]int {
	var withheld [][2]int
	for i := range p.objs {
		o := &p.objs[i]
		bv, kind := -1, ""
		switch {
		case o.data >= 0 && (o.typ == "image" || o.typ == "audio"):
			bv, kind = o.data, o.typ
		case o.blob >= 0 && o.uri >= 0:
			bv, kind = o.blob, "resource"
		default:
			continue
		}
		v := &p.vals[bv]
		if m.dropBinary {
			p.edits = append(p.edits, m.binaryNote(p, o, kind, "removed", counts))
			counts.add(binaryCountName, 1)
			withheld = append(withheld, [2]int{o.start, o.end})
			continue
		}
		raw, ok := decodeBase64(decodeString(p.s[v.start+1:v.end-1], v.esc))
		if !ok {
			continue // not base64: masked as the text it is
		}
		v.done = true
		if utf8.Valid(raw) {
			if out, c := m.MaskText(string(raw)); c != nil {
				p.edits = append(p.edits, edit{start: v.start, end: v.end, repl: quote(base64.StdEncoding.EncodeToString([]byte(out)))})
				counts.Merge(c)
			}
			continue
		}
		var c Counts
		switch m.binary {
		case BinaryPass:
			continue
		case BinaryScan:
			if c = m.scanBinary(raw); c == nil {
				continue
			}
		}
		counts.Merge(c)
		counts.add(binaryCountName, 1)
		p.edits = append(p.edits, m.binaryNote(p, o, kind, "withheld", counts))
		withheld = append(withheld, [2]int{o.start, o.end})
	}
	return withheld
}

// binaryNote replaces the object o holding binary content with a text note;
// a resource keeps its (masked) uri.
func (m *Masker) binaryNote(p *jparser, o *jsonObj, kind, what string, counts *Counts) edit {
	if kind != "resource" {
		return edit{start: o.start, end: o.end, repl: `{"type":"text","text":"[` + kind + ` ` + what + ` by gateway]"}`}
	}
	u := p.vals[o.uri]
	uri, c := m.MaskText(decodeString(p.s[u.start+1:u.end-1], u.esc))
	counts.Merge(c)
	return edit{start: o.start, end: o.end, repl: `{"uri":` + quote(uri) +
		`,"mimeType":"text/plain","text":"[binary resource ` + what + ` by gateway]"}`}
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, ignoring
// line breaks.
func decodeBase64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// minPrintableRun is the shortest run of text inside binary content that
// scanBinary looks at.
const minPrintableRun = 6

// scanBinary masks the printable runs inside binary bytes (UTF-8 text and
// UTF-16LE ASCII, as strings(1) finds them) and returns the findings.
func (m *Masker) scanBinary(b []byte) Counts {
	var text strings.Builder
	flush := func(run []byte) {
		if utf8.RuneCount(run) >= minPrintableRun {
			text.Write(run)
			text.WriteByte('\n')
		}
	}
	start := -1
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		printable := r != utf8.RuneError && (r >= 0x20 && r != 0x7F || r == '\t' || r == '\n' || r == '\r')
		if printable {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			flush(b[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		flush(b[start:])
	}
	var run []byte
	for off := 0; off < 2; off++ {
		for i := off; i+1 < len(b); i += 2 {
			if c := b[i]; b[i+1] == 0 && (c >= 0x20 && c < 0x7F || c == '\t' || c == '\n' || c == '\r') {
				run = append(run, c)
				continue
			}
			flush(run)
			run = run[:0]
		}
		flush(run)
		run = run[:0]
	}
	if text.Len() == 0 {
		return nil
	}
	_, c := m.MaskText(text.String())
	return c
}
