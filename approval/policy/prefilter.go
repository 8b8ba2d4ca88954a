package policy

import (
	"bytes"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// minPrefilterLen is the shortest literal worth a prefilter.
const minPrefilterLen = 3

// prefilter is a cheap necessary condition for an args_match regular
// expression: every match contains at least one of the literals. The
// literals are ASCII-lowercased and searched in the ASCII-lowercased
// canonical arguments, so only a text that passes is handed to the regexp.
//
// Soundness under (?i): RE2 folds case with Unicode simple folding, in which
// 'k' also matches U+212A (Kelvin sign) and 's' also matches U+017F (long
// s). A case-insensitive literal is therefore only used through runs of
// ASCII characters other than k and s, whose every fold is ASCII; ASCII
// lowercasing of the text then preserves every possible match.
type prefilter struct {
	literals [][]byte
}

// newPrefilter derives a prefilter from a regular expression that has
// already compiled, or returns nil when there is no useful literal.
func newPrefilter(expr string) *prefilter {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	lits := requiredLiterals(re.Simplify())
	if len(lits) == 0 {
		return nil
	}
	pf := &prefilter{}
	for _, l := range lits {
		pf.literals = append(pf.literals, []byte(l))
	}
	return pf
}

// mayMatch reports whether lowered (ASCII-lowercased text) can match.
func (pf *prefilter) mayMatch(lowered []byte) bool {
	for _, l := range pf.literals {
		if bytes.Contains(lowered, l) {
			return true
		}
	}
	return false
}

// requiredLiterals returns literals of which every match of re contains at
// least one, or nil if it cannot tell.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if l := usableLiteral(re.Rune, re.Flags&syntax.FoldCase != 0); len(l) >= minPrefilterLen {
			return []string{l}
		}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		// Any child's requirement is the whole concatenation's; prefer the
		// one whose shortest literal is longest.
		var best []string
		bestLen := 0
		for _, sub := range re.Sub {
			lits := requiredLiterals(sub)
			if len(lits) == 0 {
				continue
			}
			shortest := len(lits[0])
			for _, l := range lits[1:] {
				shortest = min(shortest, len(l))
			}
			if shortest > bestLen {
				best, bestLen = lits, shortest
			}
		}
		return best
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits := requiredLiterals(sub)
			if len(lits) == 0 {
				return nil
			}
			all = append(all, lits...)
		}
		return all
	}
	return nil
}

// usableLiteral returns the longest part of a literal that is safe to search
// for in ASCII-lowercased text (see prefilter).
func usableLiteral(runes []rune, fold bool) string {
	if !fold {
		return asciiLower(string(runes))
	}
	best, cur := "", strings.Builder{}
	flush := func() {
		if cur.Len() > len(best) {
			best = cur.String()
		}
		cur.Reset()
	}
	for _, r := range runes {
		lr := r
		if 'A' <= r && r <= 'Z' {
			lr = r + 'a' - 'A'
		}
		if r >= utf8.RuneSelf || lr == 'k' || lr == 's' {
			flush()
			continue
		}
		cur.WriteRune(lr)
	}
	flush()
	return best
}

// asciiLower lowercases A-Z only.
func asciiLower(s string) string {
	return string(appendASCIILower(nil, []byte(s)))
}

func appendASCIILower(dst, src []byte) []byte {
	for _, c := range src {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
