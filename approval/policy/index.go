package policy

import (
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ruleIndex narrows one server's rules to those whose tools, users and
// groups can match a call. It only rules out: every rule it keeps is still
// matched in full by eval, and the kept rules are visited in rule order, so
// the first match is the same as in a linear scan.
//
// Each dimension gives a bitset over all the policy's rules: the rules whose
// patterns in that dimension can match the call. The candidates are the
// intersection of the three.
type ruleIndex struct {
	words  int // bitset length in 64-bit words
	tools  globIndex
	users  globIndex
	groups groupIndex
}

// globIndex finds the rules with a glob that can match a string: a literal
// glob only that string, a glob with a literal prefix only strings starting
// with it. A glob with no literal prefix ("*", "*_issue", "?x"), or no globs
// at all in that dimension, puts the rule in always.
type globIndex struct {
	always []uint64
	exact  map[string][]int32
	prefix []prefixTable // by increasing prefix length
}

type prefixTable struct {
	n int
	m map[string][]int32
}

// groupIndex finds the rules naming a group the caller holds, compared as
// strings.EqualFold does (through foldKey); rules without groups are in
// always.
type groupIndex struct {
	always []uint64
	by     map[string][]int32
}

// indexWords is the bitset size that Decide keeps on its stack; larger
// policies allocate their scratch bitsets.
const indexWords = 8

func newRuleIndex(rules []rule, order []int32) *ruleIndex {
	w := (len(rules) + 63) / 64
	x := &ruleIndex{
		words:  w,
		tools:  globIndex{always: make([]uint64, w), exact: map[string][]int32{}},
		users:  globIndex{always: make([]uint64, w), exact: map[string][]int32{}},
		groups: groupIndex{always: make([]uint64, w), by: map[string][]int32{}},
	}
	for _, i := range order {
		r := &rules[i]
		x.tools.add(i, r.tools)
		x.users.add(i, r.users)
		if len(r.groups) == 0 {
			setBit(x.groups.always, i)
			continue
		}
		for _, g := range r.groups {
			k := foldKey(g)
			if l := x.groups.by[k]; len(l) == 0 || l[len(l)-1] != i {
				x.groups.by[k] = append(l, i)
			}
		}
	}
	return x
}

func (x *globIndex) add(i int32, globs []glob) {
	if len(globs) == 0 {
		setBit(x.always, i)
		return
	}
	for g := range globs {
		if globs[g].kind == globLiteral {
			x.exact[globs[g].lit] = appendOnce(x.exact[globs[g].lit], i)
			continue
		}
		lit := literalPrefix(globs[g].pattern)
		if lit == "" {
			setBit(x.always, i)
			continue
		}
		t := slices.IndexFunc(x.prefix, func(t prefixTable) bool { return t.n == len(lit) })
		if t < 0 {
			x.prefix = append(x.prefix, prefixTable{n: len(lit), m: map[string][]int32{}})
			slices.SortFunc(x.prefix, func(a, b prefixTable) int { return a.n - b.n })
			t = slices.IndexFunc(x.prefix, func(t prefixTable) bool { return t.n == len(lit) })
		}
		x.prefix[t].m[lit] = appendOnce(x.prefix[t].m[lit], i)
	}
}

// fill sets dst to the rules with a glob that can match s.
func (x *globIndex) fill(dst []uint64, s string) {
	copy(dst, x.always)
	setBits(dst, x.exact[s])
	for _, t := range x.prefix {
		if t.n > len(s) {
			break
		}
		setBits(dst, t.m[s[:t.n]])
	}
}

// and intersects dst with the rules whose groups the caller can hold.
func (x *groupIndex) and(dst, scratch []uint64, held []string) {
	copy(scratch, x.always)
	if len(x.by) > 0 {
		for _, h := range held {
			setBits(scratch, x.by[foldKey(h)])
		}
	}
	for w := range dst {
		dst[w] &= scratch[w]
	}
}

// candidates writes into dst (x.words long) the rules that can match the
// call; scratch is as long.
func (x *ruleIndex) candidates(dst, scratch []uint64, st *evalState) {
	x.tools.fill(dst, st.in.Tool)
	x.users.fill(scratch, st.user())
	for w := range dst {
		dst[w] &= scratch[w]
	}
	x.groups.and(dst, scratch, st.in.Groups)
}

// literalPrefix is the part of a glob before its first wildcard.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, "*?"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

func appendOnce(l []int32, i int32) []int32 {
	if len(l) > 0 && l[len(l)-1] == i {
		return l
	}
	return append(l, i)
}

func setBit(b []uint64, i int32) { b[i>>6] |= 1 << (uint(i) & 63) }

func setBits(b []uint64, l []int32) {
	for _, i := range l {
		b[i>>6] |= 1 << (uint(i) & 63)
	}
}

// nextBit returns the lowest set bit at or after from, or -1.
func nextBit(b []uint64, from int) int {
	w := from >> 6
	if w >= len(b) {
		return -1
	}
	word := b[w] &^ (1<<(uint(from)&63) - 1)
	for {
		if word != 0 {
			return w<<6 + bits.TrailingZeros64(word)
		}
		w++
		if w == len(b) {
			return -1
		}
		word = b[w]
	}
}

// foldKey maps s to a key that two strings share exactly when
// strings.EqualFold holds for them: each rune becomes one fixed member of
// its case-folding orbit (the lower-case ASCII letter when the orbit has
// one, so "K", "k" and the Kelvin sign all give "k"; otherwise the orbit's
// smallest rune), and an invalid byte becomes U+FFFD, as EqualFold decodes
// it. Lower-case ASCII, the usual case, is returned as is.
func foldKey(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // invalid bytes come out as utf8.RuneError
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	best, ascii := r, rune(-1)
	if r < utf8.RuneSelf {
		ascii = r
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < best {
			best = f
		}
		if f < utf8.RuneSelf && (ascii < 0 || f > ascii) {
			ascii = f // prefer the lower-case ASCII letter
		}
	}
	if ascii >= 0 {
		return ascii
	}
	return best
}
