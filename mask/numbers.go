package mask

import "strings"

// digits runs the numeric detectors at the digit run starting at i and
// returns where the scan continues.
func (sc *scanner) digits(i int) int {
	s, m := sc.s, sc.m
	j := i + 1
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	n := j - i
	var p, nx byte
	if i > 0 {
		p = s[i-1]
	}
	if j < len(s) {
		nx = s[j]
	}
	if isUpper(p) {
		// Only an IBAN starts with letters.
		if m.enabled[detIBAN] && n >= 2 && i >= 2 && isUpper(s[i-2]) && !sc.wordBefore(i-2) {
			sc.iban(i - 2)
		}
		return j
	}
	if isWord(p) {
		return j // inside an identifier
	}
	next := j
	if m.enabled[detCreditCard] && (n >= 13 && n <= 19 || n == 4 && (nx == ' ' || nx == '-' || nx == '.')) {
		if e := sc.card(i, j); e > next {
			next = e
		}
	}
	if m.enabled[detSSN] && (n == 3 && (nx == '-' || nx == ' ') || n == 9) {
		sc.ssn(i, j)
	}
	if m.enabled[detIPv4] && n <= 3 && nx == '.' {
		sc.ipv4(i)
	}
	if m.enabled[detPhone] && (p == '+' || p == '(' || (n == 3 || n == 1) && (nx == '-' || nx == '.')) {
		sc.phone(i, j)
	}
	return next
}

// decimalBefore reports whether the run at i continues a decimal number
// ("3.14159…") or a dotted version.
func (sc *scanner) decimalBefore(i int) bool {
	return i >= 2 && sc.s[i-1] == '.' && isDigit(sc.s[i-2])
}

// numberEndsAt reports whether a number may end at e: no word character and
// no decimal fraction follows.
func (sc *scanner) numberEndsAt(e int) bool {
	s := sc.s
	if e >= len(s) {
		return true
	}
	if isWord(s[e]) {
		return false
	}
	return !(s[e] == '.' && e+1 < len(s) && isDigit(s[e+1]))
}

// card finds a payment card number starting at the run [i, j): 13–19 digits,
// either contiguous or in groups of 3–6 separated by one consistent space,
// dash or dot with a first group of four, with a known issuer prefix and a valid
// Luhn check digit. It returns the end of the finding, or 0.
func (sc *scanner) card(i, j int) int {
	s := sc.s
	if sc.wordBefore(i) || sc.decimalBefore(i) || (i >= 2 && s[i-1] == '-' && isAlnum(s[i-2])) {
		return 0 // inside a number, a decimal or a hyphenated identifier
	}
	n0 := j - i
	if n0 >= 13 && n0 <= 19 && sc.numberEndsAt(j) && validCard(s[i:j]) {
		sc.add(i, j, detCreditCard)
		return j
	}
	if n0 != 4 {
		return 0
	}
	var ends [8]int
	ends[0] = j
	ng, total := 1, 4
	var sep byte
	for k := j; ng < len(ends) && k+1 < len(s); {
		c := s[k]
		if (c != ' ' && c != '-' && c != '.') || (sep != 0 && c != sep) || !isDigit(s[k+1]) {
			break
		}
		e := k + 1
		for e < len(s) && isDigit(s[e]) {
			e++
		}
		if e-k-1 < 3 || e-k-1 > 6 {
			break
		}
		sep = c
		ends[ng] = e
		ng++
		total += e - k - 1
		if total > 19 {
			break
		}
		k = e
	}
	for g := ng - 1; g >= 1; g-- {
		e := ends[g]
		if !sc.numberEndsAt(e) {
			continue
		}
		var buf [24]byte
		d := buf[:0]
		for k := i; k < e; k++ {
			if isDigit(s[k]) {
				d = append(d, s[k])
			}
		}
		if len(d) >= 13 && len(d) <= 19 && validCard(string(d)) {
			sc.add(i, e, detCreditCard)
			return e
		}
	}
	return 0
}

// validCard checks the issuer prefix, the length and the Luhn digit of a
// string of 13–19 digits.
func validCard(d string) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	p6 := p4*100 + int(d[4]-'0')*10 + int(d[5]-'0')
	ok := false
	switch {
	case d[0] == '4': // Visa
		ok = n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		ok = n == 16
	case p2 == 34 || p2 == 37: // American Express
		ok = n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		ok = n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		ok = n >= 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		ok = n >= 14
	case p4 >= 2200 && p4 <= 2204: // Mir
		ok = n >= 16
	case p2 == 62, p2 == 81: // UnionPay
		ok = n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro
		ok = true
	}
	return ok && luhn(d)
}

func luhn(d string) bool {
	sum, double := 0, false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ssn finds a US social security number AAA-GG-SSSS at the run [i, j). The
// forms "AAA GG SSSS" and "AAAGGSSSS" count only after an "SSN" or "social
// security" label, since bare nine-digit numbers are mostly something else.
func (sc *scanner) ssn(i, j int) {
	s := sc.s
	if sc.wordBefore(i) || sc.decimalBefore(i) {
		return
	}
	if i >= 2 && (s[i-1] == '-' || s[i-1] == ' ') && isDigit(s[i-2]) {
		return // part of a longer group of numbers
	}
	var e int
	switch j - i {
	case 3:
		if j+8 > len(s) {
			return
		}
		sep := s[j]
		if (sep != '-' && sep != ' ') || !isDigit(s[j+1]) || !isDigit(s[j+2]) || s[j+3] != sep ||
			!isDigit(s[j+4]) || !isDigit(s[j+5]) || !isDigit(s[j+6]) || !isDigit(s[j+7]) {
			return
		}
		e = j + 8
		if e < len(s) && (s[e] == '-' || s[e] == ' ') && e+1 < len(s) && isDigit(s[e+1]) {
			return
		}
		if sep == ' ' && !sc.ssnLabelBefore(i) {
			return
		}
	case 9:
		if !sc.ssnLabelBefore(i) {
			return
		}
		e = j
	default:
		return
	}
	if !sc.numberEndsAt(e) {
		return
	}
	var d [9]byte
	n := 0
	for k := i; k < e; k++ {
		if isDigit(s[k]) {
			d[n] = s[k]
			n++
		}
	}
	area := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	group := int(d[3]-'0')*10 + int(d[4]-'0')
	serial := int(d[5]-'0')*1000 + int(d[6]-'0')*100 + int(d[7]-'0')*10 + int(d[8]-'0')
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return
	}
	if v := string(d[:]); v == "078051120" || v == "219099999" { // publicised, void
		return
	}
	sc.add(i, e, detSSN)
}

// ssnLabelBefore reports whether "ssn" or "social security" appears in the
// 32 bytes before i.
func (sc *scanner) ssnLabelBefore(i int) bool {
	lo := i - 32
	if lo < 0 {
		lo = 0
	}
	w := sc.s[lo:i]
	return containsFold(w, "ssn") || containsFold(w, "social security")
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case.
func containsFold(s, sub string) bool {
	for k := 0; k+len(sub) <= len(s); k++ {
		if c := s[k] | 0x20; c == sub[0] && strings.EqualFold(s[k:k+len(sub)], sub) {
			return true
		}
	}
	return false
}

// ipv4 finds a dotted-quad IPv4 address at i. Unspecified (0/8), loopback
// (127/8), multicast and reserved (224/3) addresses carry no information and
// are left alone.
func (sc *scanner) ipv4(i int) {
	s := sc.s
	if i > 0 && (isWord(s[i-1]) || s[i-1] == '.') {
		return
	}
	k := i
	var first int
	for part := 0; part < 4; part++ {
		if part > 0 {
			if k >= len(s) || s[k] != '.' {
				return
			}
			k++
		}
		st := k
		v := 0
		for k < len(s) && isDigit(s[k]) && k-st < 4 {
			v = v*10 + int(s[k]-'0')
			k++
		}
		n := k - st
		if n == 0 || n > 3 || v > 255 || (n > 1 && s[st] == '0') {
			return
		}
		if part == 0 {
			first = v
		}
	}
	if k < len(s) && (isWord(s[k]) || s[k] == '.' && k+1 < len(s) && isAlnum(s[k+1])) {
		return
	}
	if first == 0 || first == 127 || first >= 224 {
		return
	}
	sc.add(i, k, detIPv4)
}

// phone finds telephone numbers at the run [i, j): international numbers
// written with a leading '+' (8–15 digits, E.164), and North American numbers
// written (AAA) EEE-NNNN, AAA-EEE-NNNN or AAA.EEE.NNNN. Bare digit strings
// are not phone numbers here: they are too often ids and timestamps.
func (sc *scanner) phone(i, j int) {
	s := sc.s
	if i > 0 && s[i-1] == '+' {
		if i >= 2 && (isWord(s[i-2]) || s[i-2] == '+') {
			return
		}
		sc.intlPhone(i)
		return
	}
	if i > 0 && s[i-1] == '(' && j-i == 3 {
		// (AAA) EEE-NNNN
		if j+9 > len(s) || s[j] != ')' || s[i] < '2' {
			return
		}
		k := j + 1
		if s[k] == ' ' {
			k++
		}
		if e := sc.nanpTail(k, 0); e > 0 && !sc.wordBefore(i-1) {
			sc.add(i-1, e, detPhone)
		}
		return
	}
	if sc.wordBefore(i) || sc.decimalBefore(i) || (i >= 2 && (s[i-1] == '-') && isDigit(s[i-2])) {
		return
	}
	k := i
	if j-i == 1 && s[i] == '1' && j+1 < len(s) && (s[j] == '-' || s[j] == '.') {
		k = j + 1 // country code 1
		if k+3 > len(s) || !isDigit(s[k]) || !isDigit(s[k+1]) || !isDigit(s[k+2]) || (k+3 < len(s) && isDigit(s[k+3])) {
			return
		}
	} else if j-i != 3 {
		return
	}
	// AAA-EEE-NNNN
	if s[k] < '2' || k+4 > len(s) {
		return
	}
	sep := s[k+3]
	if sep != '-' && sep != '.' {
		return
	}
	if k != i && s[j] != sep {
		return
	}
	if e := sc.nanpTail(k+4, sep); e > 0 {
		sc.add(i, e, detPhone)
	}
}

// nanpTail matches "EEE<sep>NNNN" at k (sep 0 allows '-', '.' or ' ') and
// returns its end, or 0.
func (sc *scanner) nanpTail(k int, sep byte) int {
	s := sc.s
	if k+8 > len(s) || s[k] < '2' || !isDigit(s[k]) || !isDigit(s[k+1]) || !isDigit(s[k+2]) {
		return 0
	}
	c := s[k+3]
	if sep == 0 && c != '-' && c != '.' && c != ' ' || sep != 0 && c != sep {
		return 0
	}
	for x := k + 4; x < k+8; x++ {
		if !isDigit(s[x]) {
			return 0
		}
	}
	e := k + 8
	if !sc.numberEndsAt(e) || e+1 < len(s) && (s[e] == '-' || s[e] == c) && isDigit(s[e+1]) {
		return 0
	}
	return e
}

// intlPhone matches "+CC …" at i (the digit after '+').
func (sc *scanner) intlPhone(i int) {
	s := sc.s
	k, n, end := i, 0, i
	for k < len(s) && k-i < 32 {
		c := s[k]
		switch {
		case isDigit(c):
			n++
			k++
			end = k
			continue
		case (c == ' ' || c == '-' || c == '.') && k+1 < len(s) && (isDigit(s[k+1]) || s[k+1] == '('):
		case c == '(' && k+1 < len(s) && isDigit(s[k+1]) && s[k-1] != '(':
		case c == ')' && isDigit(s[k-1]) && k+1 < len(s) && (s[k+1] == ' ' || s[k+1] == '-' || isDigit(s[k+1])):
		default:
			k = len(s) // stop
			continue
		}
		k++
	}
	if n < 8 || n > 15 || !sc.numberEndsAt(end) {
		return
	}
	sc.add(i-1, end, detPhone)
}

// ibanLengths holds the IBAN length of each country that uses one.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
	"LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
	"MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
	"PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
	"SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// iban finds an IBAN at i, in electronic form or printed in groups of four,
// checking the country's length and the mod-97 check digits.
func (sc *scanner) iban(i int) {
	s := sc.s
	want, ok := ibanLengths[s[i:i+2]]
	if !ok {
		return
	}
	var buf [34]byte
	n, k := 0, i
	for n < want && k < len(s) {
		c := s[k]
		switch {
		case isUpper(c) || isDigit(c):
			buf[n] = c
			n++
			k++
		case c == ' ' && n%4 == 0 && k+1 < len(s) && (isUpper(s[k+1]) || isDigit(s[k+1])):
			k++
		default:
			return
		}
	}
	if n != want || sc.wordAt(k) {
		return
	}
	// Move the first four characters to the end; letters count 10–35.
	rem := 0
	for x := 0; x < n; x++ {
		c := buf[(x+4)%n]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	if rem == 1 {
		sc.add(i, k, detIBAN)
	}
}
