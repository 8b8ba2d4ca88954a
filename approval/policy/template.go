package policy

import "strings"

// templateGlob turns an RFC 6570 URI template into a glob that matches
// every URI it can produce (and more): each {expression} becomes '*'.
func templateGlob(tmpl string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:open])
		b.WriteByte('*')
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return b.String() // an unclosed expression: anything may follow
		}
		tmpl = tmpl[open+end+1:]
	}
}

// globsIntersect reports whether some string matches both globs ('*' any
// run of characters, '?' one character, everything else literal). It
// walks the product of the two patterns, so it takes at most
// O(len(a)·len(b)) steps.
func globsIntersect(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	na, nb := len(ra)+1, len(rb)+1
	seen := make([]bool, na*nb)
	stack := []int{0}
	seen[0] = true
	push := func(i, j int) {
		if k := i*nb + j; !seen[k] {
			seen[k] = true
			stack = append(stack, k)
		}
	}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j := k/nb, k%nb
		if i == len(ra) && j == len(rb) {
			return true
		}
		// A star may match nothing.
		if i < len(ra) && ra[i] == '*' {
			push(i+1, j)
		}
		if j < len(rb) && rb[j] == '*' {
			push(i, j+1)
		}
		if i == len(ra) || j == len(rb) {
			continue
		}
		// Both consume one common character.
		ca, cb := ra[i], rb[j]
		if ca != '*' && ca != '?' && cb != '*' && cb != '?' && ca != cb {
			continue
		}
		ni, nj := i+1, j+1
		if ca == '*' {
			ni = i // the star stays to match more
		}
		if cb == '*' {
			nj = j
		}
		if ni != i || nj != j {
			push(ni, nj)
		}
	}
	return false
}
