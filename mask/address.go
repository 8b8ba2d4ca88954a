package mask

import (
	"net/netip"
	"unicode"
	"unicode/utf8"
)

// at handles '@': e-mail addresses, internationalised ones included
// (user@bücher.de, пример@почта.рф, RFC 6531), and passwords in URL user
// info (scheme://user:password@host).
func (sc *scanner) at(a int) {
	s, m := sc.s, sc.m
	if m.enabled[detSecretAssignment] && sc.urlPassword(a) {
		return
	}
	if !m.enabled[detEmail] {
		return
	}
	j := a
	for j > 0 && a-j <= maxLocalBytes {
		if c := s[j-1]; c < utf8.RuneSelf {
			if charClass[c]&cLocal == 0 {
				break
			}
			j--
			continue
		}
		r, size := utf8.DecodeLastRuneInString(s[:j])
		if !idnRune(r) {
			break
		}
		j -= size
	}
	if j == a || a-j > maxLocalBytes || s[j] == '.' || s[a-1] == '.' || (j > 0 && s[j-1] == '/') {
		return
	}
	// Domain: at least two labels, a final label of two or more letters
	// (or an A-label, xn--…).
	k, labels, lastStart := a+1, 0, a+1
	for {
		st := k
		for k < len(s) && k-st < 4*63 {
			if c := s[k]; c < utf8.RuneSelf {
				if !isAlnum(c) && c != '-' {
					break
				}
				k++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[k:])
			if !idnRune(r) {
				break
			}
			k += size
		}
		if k == st || s[st] == '-' || s[k-1] == '-' {
			return
		}
		labels++
		lastStart = st
		if k+1 < len(s) && s[k] == '.' && (isAlnum(s[k+1]) || s[k+1] >= utf8.RuneSelf) && k-a < 4*253 {
			k++
			continue
		}
		break
	}
	if labels < 2 || sc.wordAt(k) || !topLabel(s[lastStart:k]) {
		return
	}
	sc.add(j, k, detEmail)
}

// maxLocalBytes bounds the local part of an e-mail address: 64 characters,
// of up to four bytes each.
const maxLocalBytes = 4 * 64

// idnRune reports whether r, a non-ASCII rune, may appear in an
// internationalised local part or domain label.
func idnRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc))
}

// topLabel reports whether l can be the last label of a domain: two or more
// letters, or an A-label ("xn--p1ai").
func topLabel(l string) bool {
	if len(l) > 4 && l[:4] == "xn--" {
		return true
	}
	n := 0
	for _, r := range l {
		if !unicode.IsLetter(r) {
			return false
		}
		n++
	}
	return n >= 2
}

// maxIPv6Len is the longest IPv6 text form: eight groups of four, or six
// groups and an embedded IPv4 address.
const maxIPv6Len = 45

func isIPv6Char(c byte) bool { return isHex(c) || c == ':' || c == '.' }

// ipv6 finds an IPv6 address around the colon at x: full (2001:db8:0:0:0:0:
// 0:1), compressed (2001:db8::1) or with an embedded IPv4 address
// (::ffff:192.0.2.1), validated by net/netip. Unspecified, loopback and
// multicast addresses carry no information and are left alone, and so are
// look-alikes without a group of three or more hex digits or without a
// decimal digit ("a::b", "[1::2]", "dead::beef", EUI-64 and MAC addresses).
func (sc *scanner) ipv6(x int) {
	s := sc.s
	a := x
	for a > 0 && x-a <= maxIPv6Len && isIPv6Char(s[a-1]) {
		a--
	}
	e := x + 1
	for e < len(s) && e-a <= maxIPv6Len && isIPv6Char(s[e]) {
		e++
	}
	sc.v6Done = e
	if a > 0 && (isWord(s[a-1]) || isIPv6Char(s[a-1])) {
		return // inside a word, or longer than any address
	}
	if e < len(s) && isIPv6Char(s[e]) {
		return
	}
	for e > x+1 && s[e-1] == '.' {
		e-- // the end of a sentence
	}
	if s[e-1] == ':' && (e-2 < a || s[e-2] != ':') {
		e-- // "at 2001:db8::1: the host"
	}
	if e < len(s) && isWord(s[e]) {
		return
	}
	cand := s[a:e]
	longGroup, digit, run := false, false, 0
	for i := 0; i < len(cand); i++ {
		c := cand[i]
		if c == ':' || c == '.' {
			run = 0
			continue
		}
		run++
		longGroup = longGroup || run >= 3
		digit = digit || isDigit(c)
	}
	if !longGroup || !digit {
		return
	}
	addr, err := netip.ParseAddr(cand)
	if err != nil || !addr.Is6() || addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() {
		return
	}
	if addr.Is4In6() {
		if v4 := addr.Unmap().As4(); v4[0] == 0 || v4[0] == 127 || v4[0] >= 224 {
			return
		}
	}
	sc.add(a, e, detIPv6)
}
