package install

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// apply performs non-overlapping edits on a copy of src.
func apply(src []byte, edits ...edit) []byte {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), src...)
	for _, e := range edits {
		out = append(out[:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out
}

// layout is how a document is indented, learned from the document itself.
type layout struct {
	src  []byte
	unit string // one level of indentation
}

func newLayout(src []byte, root *node) layout {
	l := layout{src: src, unit: "  "}
	for _, m := range root.members {
		if l.startsLine(m.keyStart) {
			if ind := strings.TrimPrefix(l.indent(m.keyStart), l.indent(root.start)); ind != "" {
				l.unit = ind
			}
			break
		}
	}
	return l
}

// indent returns the leading whitespace of the line holding pos.
func (l layout) indent(pos int) string {
	start := bytes.LastIndexByte(l.src[:pos], '\n') + 1
	end := start
	for end < len(l.src) && (l.src[end] == ' ' || l.src[end] == '\t') {
		end++
	}
	return string(l.src[start:end])
}

// startsLine reports whether only indentation precedes pos on its line.
func (l layout) startsLine(pos int) bool {
	start := bytes.LastIndexByte(l.src[:pos], '\n') + 1
	return strings.TrimLeft(string(l.src[start:pos]), " \t") == ""
}

// multiline reports whether new members of obj go on lines of their own.
// An object written on one line stays on one line.
func (l layout) multiline(obj *node) bool {
	if len(obj.members) == 0 {
		return bytes.IndexByte(l.src, '\n') >= 0 || len(bytes.TrimSpace(l.src)) <= 2
	}
	return bytes.IndexByte(l.src[obj.start:obj.end], '\n') >= 0
}

// render encodes v as JSON. With indent, it is laid out over several
// lines, each continuation line starting with indent.
func (l layout) render(v any, multiline bool, indent string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if multiline {
		enc.SetIndent(indent, l.unit)
	}
	_ = enc.Encode(v) // v is always one of this package's plain types
	s := strings.TrimSuffix(b.String(), "\n")
	if !multiline {
		s = compactSpaces(s)
	}
	return s
}

// compactSpaces puts a space after ':' and ',' outside strings, so that a
// one-line entry reads like hand-written JSON.
func compactSpaces(s string) string {
	var b strings.Builder
	in, esc := false, false
	for _, r := range s {
		b.WriteRune(r)
		switch {
		case esc:
			esc = false
		case in && r == '\\':
			esc = true
		case r == '"':
			in = !in
		case !in && (r == ':' || r == ','):
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// tail returns the offset just after the last token or comment inside obj,
// before the whitespace that precedes its closing brace.
func (l layout) tail(obj *node) int {
	i := obj.end - 1 // the closing brace
	for i > obj.start+1 && strings.IndexByte(" \t\r\n", l.src[i-1]) >= 0 {
		i--
	}
	return i
}

// insertMember adds "key": v as the last member of obj.
func (l layout) insertMember(obj *node, key string, v any) []edit {
	keyText := l.render(key, false, "")
	if !l.multiline(obj) {
		text := keyText + ": " + l.render(v, false, "")
		if len(obj.members) == 0 {
			return []edit{{obj.start + 1, obj.start + 1, text}}
		}
		last := obj.members[len(obj.members)-1]
		return []edit{{last.value.end, last.value.end, ", " + text}}
	}
	objIndent := l.indent(obj.start)
	memberIndent := objIndent + l.unit
	if len(obj.members) > 0 && l.startsLine(obj.members[0].keyStart) {
		memberIndent = l.indent(obj.members[0].keyStart)
	}
	text := "\n" + memberIndent + keyText + ": " + l.render(v, true, memberIndent)
	tail := l.tail(obj)
	if len(obj.members) == 0 {
		if bytes.IndexByte(l.src[tail:obj.end-1], '\n') < 0 {
			text += "\n" + objIndent
		}
		return []edit{{tail, tail, text}}
	}
	last := obj.members[len(obj.members)-1]
	switch {
	case last.comma >= 0: // JSONC trailing comma: keep the style
		return []edit{{tail, tail, text + ","}}
	case tail == last.value.end:
		return []edit{{tail, tail, "," + text}}
	default: // a comment follows the last value
		return []edit{{last.value.end, last.value.end, ","}, {tail, tail, text}}
	}
}

// replaceValue replaces the value of obj.members[i] with v.
func (l layout) replaceValue(obj *node, i int, v any) []edit {
	m := obj.members[i]
	multi := l.multiline(obj) && l.startsLine(m.keyStart)
	return []edit{{m.value.start, m.value.end, l.render(v, multi, l.indent(m.keyStart))}}
}

// removeMember deletes obj.members[i] and the comma and whitespace that
// separated it from its neighbours.
func (l layout) removeMember(obj *node, i int) []edit {
	m := obj.members[i]
	switch {
	case i > 0:
		return []edit{{obj.members[i-1].value.end, m.value.end, ""}}
	case len(obj.members) > 1:
		return []edit{{m.keyStart, obj.members[1].keyStart, ""}}
	}
	end := m.value.end
	if m.comma >= 0 {
		end = m.comma + 1
	}
	rest := string(l.src[obj.start+1:m.keyStart]) + string(l.src[end:obj.end-1])
	if strings.TrimSpace(rest) == "" {
		return []edit{{obj.start + 1, obj.end - 1, ""}}
	}
	return []edit{{m.keyStart, end, ""}}
}
