package mask

import (
	"regexp"
	"sort"
	"strings"
)

// rule is a compiled custom rule: a regular expression or a word list.
type rule struct {
	name    string
	index   int // position in Config.Rules
	re      *regexp.Regexp
	words   *wordMatcher
	replace string
	expand  bool // replace holds $ submatch references
}

// find appends the rule's findings in s to dst. Text inside a replacement
// this package made ("[REDACTED:credit_card]") is not matched again.
func (r *rule) find(s string, dst []match) []match {
	if r.words != nil {
		r.words.find(s, func(start, end int) {
			if !insideMaskToken(s, start, end) {
				dst = append(dst, match{start: start, end: end, det: -1, rule: r})
			}
		})
		return dst
	}
	if r.expand {
		for _, loc := range r.re.FindAllStringSubmatchIndex(s, -1) {
			if loc[1] > loc[0] && !insideMaskToken(s, loc[0], loc[1]) {
				repl := string(r.re.ExpandString(nil, r.replace, s, loc))
				dst = append(dst, match{start: loc[0], end: loc[1], det: -1, rule: r, repl: repl, hasRepl: true})
			}
		}
		return dst
	}
	for _, loc := range r.re.FindAllStringIndex(s, -1) {
		if loc[1] > loc[0] && !insideMaskToken(s, loc[0], loc[1]) {
			dst = append(dst, match{start: loc[0], end: loc[1], det: -1, rule: r})
		}
	}
	return dst
}

// wordMatcher finds whole words and phrases from a list, ignoring case.
type wordMatcher struct {
	byFirst [256][]string // lower-cased words by their first byte, longest first
}

func newWordMatcher(words []string) *wordMatcher {
	w := &wordMatcher{}
	for _, word := range words {
		word = strings.ToLower(strings.TrimSpace(word))
		w.byFirst[word[0]] = append(w.byFirst[word[0]], word)
	}
	for i := range w.byFirst {
		l := w.byFirst[i]
		sort.Slice(l, func(a, b int) bool { return len(l[a]) > len(l[b]) })
	}
	return w
}

// find calls fn for each non-overlapping occurrence in s.
func (w *wordMatcher) find(s string, fn func(start, end int)) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		cands := w.byFirst[c]
		if cands == nil {
			continue
		}
		if isWord(s[i]) && i > 0 && isWord(s[i-1]) {
			continue
		}
		for _, word := range cands {
			e := i + len(word)
			if e > len(s) || !strings.EqualFold(s[i:e], word) {
				continue
			}
			if isWord(word[len(word)-1]) && e < len(s) && isWord(s[e]) {
				continue
			}
			fn(i, e)
			i = e - 1
			break
		}
	}
}

func (w *wordMatcher) contains(s string) bool {
	found := false
	w.find(s, func(int, int) { found = true })
	return found
}

// insideMaskToken reports whether s[start:end] lies within a replacement
// token ("[REDACTED:name]" or "[name#hex]").
func insideMaskToken(s string, start, end int) bool {
	for k := start; k >= 0 && start-k < 100; k-- {
		if s[k] == '[' {
			if n := maskTokenLen(s[k:]); n > 0 && k+n >= end {
				return true
			}
		}
		if k < start && s[k] == ']' {
			return false
		}
	}
	return false
}
