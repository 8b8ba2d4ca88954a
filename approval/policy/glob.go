package policy

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled pattern in which '*' matches any run of characters
// (including none, and including '/'), '?' matches exactly one character
// (rune) and every other character matches itself. There is no escape
// syntax, so a glob cannot fail to compile.
type glob struct {
	pattern string
	kind    globKind
	lit     string // literal / prefix / suffix / infix, by kind
}

type globKind uint8

const (
	globLiteral globKind = iota // no wildcard
	globAny                     // "*"
	globPrefix                  // "abc*"
	globSuffix                  // "*abc"
	globInfix                   // "*abc*"
	globGeneral                 // anything else
)

func compileGlob(pattern string) glob {
	g := glob{pattern: pattern}
	if !strings.ContainsAny(pattern, "*?") {
		g.kind, g.lit = globLiteral, pattern
		return g
	}
	if strings.Trim(pattern, "*") == "" {
		g.kind = globAny
		return g
	}
	if strings.Contains(pattern, "?") {
		g.kind = globGeneral
		return g
	}
	inner := strings.Trim(pattern, "*")
	if strings.Contains(inner, "*") {
		g.kind = globGeneral
		return g
	}
	lead := strings.HasPrefix(pattern, "*")
	trail := strings.HasSuffix(pattern, "*")
	g.lit = inner
	switch {
	case lead && trail:
		g.kind = globInfix
	case lead:
		g.kind = globSuffix
	default:
		g.kind = globPrefix
	}
	return g
}

func (g *glob) match(s string) bool {
	switch g.kind {
	case globLiteral:
		return s == g.lit
	case globAny:
		return true
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	case globInfix:
		return strings.Contains(s, g.lit)
	}
	return globMatch(g.pattern, s)
}

// globMatch is the general matcher: iterative, with single-star
// backtracking, so it runs in O(len(pattern)*len(s)) at worst.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[sx:])
				px++
				sx += n
				continue
			default:
				if s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starPx < 0 {
			return false
		}
		// Let the last star absorb one more character (rune) and retry.
		_, n := utf8.DecodeRuneInString(s[starSx:])
		starSx += n
		px, sx = starPx+1, starSx
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// anyGlob reports whether s matches one of globs.
func anyGlob(globs []glob, s string) bool {
	for i := range globs {
		if globs[i].match(s) {
			return true
		}
	}
	return false
}
