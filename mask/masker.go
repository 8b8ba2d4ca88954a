package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// binaryCountName is the Counts key for image, audio and blob content removed
// by a profile with drop_binary.
const binaryCountName = "binary"

// withheldCountName counts texts withheld whole because they were too large
// to check (over 2 GiB with characters that need normalising).
const withheldCountName = "withheld"

// Counts maps a detector or rule name to the number of values it masked.
// The key "binary" counts binary contents removed by drop_binary. Counts
// never holds the values themselves, so it is safe to log and audit.
type Counts map[string]int

// Merge adds o into c, allocating c when needed.
func (c *Counts) Merge(o Counts) {
	if len(o) == 0 {
		return
	}
	if *c == nil {
		*c = make(Counts, len(o))
	}
	for k, v := range o {
		(*c)[k] += v
	}
}

func (c *Counts) add(name string, n int) {
	if *c == nil {
		*c = make(Counts)
	}
	(*c)[name] += n
}

// Total is the number of masked values over all detectors.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String formats c as "credit_card=2 us_ssn=1", sorted by name.
func (c Counts) String() string {
	keys := c.names()
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(c[k]))
	}
	return b.String()
}

// LogValue renders c as a slog group of counts, sorted by name.
func (c Counts) LogValue() slog.Value {
	keys := c.names()
	attrs := make([]slog.Attr, len(keys))
	for i, k := range keys {
		attrs[i] = slog.Int(k, c[k])
	}
	return slog.GroupValue(attrs...)
}

func (c Counts) names() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Masker masks text and JSON-RPC messages with one profile's detectors. It is
// immutable and safe for concurrent use.
type Masker struct {
	name         string
	dropBinary   bool
	binary       BinaryMode
	style        Style
	builtinStyle [numBuiltins]Style
	ruleStyle    map[string]Style
	key          []byte

	enabled [numBuiltins]bool
	trig    [256]uint8 // trigger class per byte, 0 for none
	rules   []*rule

	// parsers recycles the JSON path's scratch tables (*jparser), so a
	// message costs no allocation for them once the masker is warm.
	parsers sync.Pool
}

// Name is the profile name.
func (m *Masker) Name() string { return m.name }

// Detectors lists the builtin detectors and custom rules this profile runs.
func (m *Masker) Detectors() []string {
	var out []string
	for i, on := range m.enabled {
		if on {
			out = append(out, builtinNames[i])
		}
	}
	for _, r := range m.rules {
		out = append(out, r.name)
	}
	return out
}

func (m *Masker) init(enabled [numBuiltins]bool, rules []*rule) {
	m.enabled = enabled
	m.rules = rules
	for d, on := range enabled {
		if !on {
			continue
		}
		for _, c := range []byte(builtinTriggers[d]) {
			if c == '0' {
				for b := '0'; b <= '9'; b++ {
					m.trig[b] = trigDigit
				}
				continue
			}
			m.trig[c] = trigClass(c)
		}
	}
	// Normalisation matters to every detector: a lead byte of a multi-byte
	// rune is where the scan checks whether the text needs the folded view.
	for c := 0xC0; c <= 0xFF; c++ {
		m.trig[c] = trigHigh
	}
}

// match is one finding: a byte range of the text and who found it.
type match struct {
	start, end int
	det        int   // builtin index, or -1 for a custom rule
	rule       *rule // custom rule when det < 0
	repl       string
	hasRepl    bool
	// whole marks a finding a detector could not bound (it reached an
	// internal limit): the whole text is withheld rather than partly masked.
	whole bool
}

func (mt *match) priority() int {
	if mt.det < 0 {
		return 1000 - mt.rule.index
	}
	return builtinPriority[mt.det]
}

func (mt *match) name() string {
	if mt.det < 0 {
		return mt.rule.name
	}
	return builtinNames[mt.det]
}

// MaskText masks s and reports what it masked. Invalid UTF-8 is replaced by
// U+FFFD, so the result is always valid UTF-8. When nothing is found, s is
// returned as is and Counts is nil. MaskText is idempotent for the builtin
// detectors and for custom rules whose replacement the profile does not match.
//
// Detection runs on a normalised view of s (see fold), so full-width and
// other Unicode digits, Unicode spaces and invisible characters do not hide a
// value; the original span of each finding is what is replaced. When a value
// can only be partly masked (a detector reached an internal limit, or
// replacements keep uncovering new findings), the whole of s is replaced by
// one "[REDACTED:<detector>]".
func (m *Masker) MaskText(s string) (string, Counts) {
	var counts Counts
	out, found := m.maskText(s, &counts)
	if !found {
		return out, nil
	}
	return out, counts
}

// maskText is MaskText adding its findings to counts, so that the JSON path
// keeps one Counts for a whole message. found reports whether anything was
// masked.
func (m *Masker) maskText(s string, counts *Counts) (out string, found bool) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	sc := scanner{m: m, s: s}
	sc.run(0, len(s))
	if sc.fold {
		return m.maskFolded(s, counts)
	}
	matches := m.findRules(s, sc.out)
	if len(matches) == 0 {
		return s, false
	}
	v := view{orig: s, norm: s}
	out, spans := m.apply(&v, matches, counts)
	// A replacement changes the context of its neighbours: "x+4420…" is no
	// phone number, but "[REDACTED:…]+4420…" may be one. Scan again around
	// the replacements until nothing changes, so that masking is idempotent.
	for pass := 0; ; pass++ {
		sc = scanner{m: m, s: out}
		lo, hi := 0, 0
		for _, sp := range spans {
			a, b := max(sp[0]-rescanWindow, 0), min(sp[1]+rescanWindow, len(out))
			if a > hi {
				sc.run(lo, hi)
				lo = a
			}
			hi = max(hi, b)
		}
		sc.run(lo, hi)
		if sc.fold {
			out, _ = m.maskFolded(out, counts)
			return out, true
		}
		matches = m.findRules(out, sc.out)
		if len(matches) == 0 {
			return out, true
		}
		if pass == maxRescans {
			return m.withhold(matches, counts), true
		}
		v = view{orig: out, norm: out}
		out, spans = m.apply(&v, matches, counts)
	}
}

// maskFolded masks s through its normalised view, rescanning the whole
// text after each round of replacements, and adds the findings to counts.
// found reports whether it masked anything.
func (m *Masker) maskFolded(s string, counts *Counts) (out string, found bool) {
	if len(s) > maxFoldLen {
		counts.add(withheldCountName, 1)
		return "[REDACTED:" + withheldCountName + "]", true // too large to check
	}
	for pass := 0; ; pass++ {
		v := fold(s)
		sc := scanner{m: m, s: v.norm, folded: true}
		sc.run(0, len(v.norm))
		matches := m.findRules(v.norm, sc.out)
		if len(matches) == 0 {
			return s, pass > 0
		}
		if pass == maxRescans {
			return m.withhold(matches, counts), true
		}
		s, _ = m.apply(&v, matches, counts)
	}
}

// withhold replaces a whole text that could not be masked completely with
// the token of the most specific detector among the findings, and counts it.
func (m *Masker) withhold(ms []match, counts *Counts) string {
	w := 0
	for i := range ms {
		if ms[i].priority() > ms[w].priority() {
			w = i
		}
	}
	name := ms[w].name()
	counts.add(name, 1)
	return "[REDACTED:" + name + "]"
}

// rescanWindow bounds how far from its trigger byte a builtin detector
// looks when it decides whether a replacement made a new finding;
// maxRescans bounds the passes after the first.
const (
	rescanWindow = 320
	maxRescans   = 8
)

// findRules appends the custom rules' findings in s to dst.
func (m *Masker) findRules(s string, dst []match) []match {
	for _, r := range m.rules {
		dst = r.find(s, dst)
	}
	return dst
}

// apply replaces the findings (byte ranges of v.norm) in v.orig; overlapping
// findings merge into one replacement named after the most specific detector
// among them. It also returns the byte ranges of the replacements in the
// result. A finding marked whole replaces the entire text.
func (m *Masker) apply(v *view, ms []match, counts *Counts) (string, [][2]int) {
	for i := range ms {
		if ms[i].whole {
			out := m.withhold(ms[i:i+1], counts)
			return out, [][2]int{{0, len(out)}}
		}
	}
	if len(ms) > 1 {
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].start != ms[j].start {
				return ms[i].start < ms[j].start
			}
			return ms[i].end > ms[j].end
		})
	}
	s := v.orig
	var b strings.Builder
	b.Grow(len(s) + 16*len(ms))
	spans := make([][2]int, 0, len(ms))
	last := 0
	for i := 0; i < len(ms); {
		win := i
		start, end := ms[i].start, ms[i].end
		j := i + 1
		for ; j < len(ms) && ms[j].start < end; j++ {
			if ms[j].end > end {
				end = ms[j].end
			}
			if ms[j].priority() > ms[win].priority() {
				win = j
			}
		}
		w := &ms[win]
		from, to := v.span(start, end)
		b.WriteString(s[last:from])
		at := b.Len()
		if w.hasRepl {
			b.WriteString(w.repl)
		} else {
			b.WriteString(m.replacement(w.det, w.rule, v.norm[start:end]))
		}
		spans = append(spans, [2]int{at, b.Len()})
		counts.add(w.name(), 1)
		last = to
		i = j
	}
	b.WriteString(s[last:])
	return b.String(), spans
}

// replacement renders the masked form of value found by det (or rule r).
func (m *Masker) replacement(det int, r *rule, value string) string {
	var name string
	var st Style
	if det < 0 {
		if r.replace != "" {
			return r.replace
		}
		name, st = r.name, m.ruleStyle[r.name]
	} else {
		name, st = builtinNames[det], m.builtinStyle[det]
	}
	switch st {
	case StylePartial:
		return partial(normalize(det, value))
	case StylePseudonym:
		mac := hmac.New(sha256.New, m.key)
		mac.Write([]byte(name))
		mac.Write([]byte{0})
		mac.Write([]byte(normalize(det, value)))
		sum := mac.Sum(nil)
		return "[" + name + "#" + hex.EncodeToString(sum[:6]) + "]"
	default:
		return "[REDACTED:" + name + "]"
	}
}

// normalize reduces a value to the form that identifies it, so that
// "4111 1111 1111 1111" and "4111111111111111" pseudonymise alike.
func normalize(det int, v string) string {
	switch det {
	case detCreditCard, detSSN, detPhone, detIBAN:
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if c := v[i]; isAlnum(c) {
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				b.WriteByte(c)
			}
		}
		return b.String()
	case detEmail:
		return strings.ToLower(v)
	}
	return v
}

// partial keeps the last four characters of values of eight or more
// characters and replaces every other character with '*'.
func partial(v string) string {
	n := utf8.RuneCountInString(v)
	if n < 8 {
		return strings.Repeat("*", n)
	}
	tail := v
	for k := 0; k < n-4; k++ {
		_, sz := utf8.DecodeRuneInString(tail)
		tail = tail[sz:]
	}
	return strings.Repeat("*", n-4) + tail
}

// isMaskToken reports whether v is, in full, a replacement this package
// produces, so that masking it again would change nothing.
func isMaskToken(v string) bool {
	if n := maskTokenLen(v); n == len(v) && n > 0 {
		return true
	}
	stars := 0
	for stars < len(v) && v[stars] == '*' {
		stars++
	}
	if stars == 0 {
		return false
	}
	rest := utf8.RuneCountInString(v[stars:])
	return rest == 0 || (stars >= 4 && rest <= 4)
}

// maskTokenLen returns the length of the "[REDACTED:name]" or "[name#hex]"
// token at the start of s, or 0.
func maskTokenLen(s string) int {
	if len(s) < 3 || s[0] != '[' {
		return 0
	}
	const red = "[REDACTED:"
	if strings.HasPrefix(s, red) {
		i := len(red)
		for i < len(s) && i < 80 && isNameChar(s[i]) {
			i++
		}
		if i > len(red) && i < len(s) && s[i] == ']' {
			return i + 1
		}
		return 0
	}
	i := 1
	for i < len(s) && i < 80 && isNameChar(s[i]) {
		i++
	}
	if i == 1 || i+14 > len(s) || s[i] != '#' || s[i+13] != ']' {
		return 0
	}
	for _, c := range []byte(s[i+1 : i+13]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0
		}
	}
	return i + 14
}

func isNameChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }
