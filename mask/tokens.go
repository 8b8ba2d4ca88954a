package mask

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// span returns the end of the run of bytes of class cls starting at i,
// looking at no more than max bytes.
func (sc *scanner) span(i int, cls uint8, max int) int {
	s := sc.s
	lim := i + max
	if lim > len(s) {
		lim = len(s)
	}
	for i < lim && charClass[s[i]]&cls != 0 {
		i++
	}
	return i
}

// urlPassword masks the password of scheme://user:password@host.
func (sc *scanner) urlPassword(a int) bool {
	s := sc.s
	colon := -1
	j := a - 1
	for ; j >= 0 && a-j <= 256; j-- {
		c := s[j]
		if c == '/' {
			break
		}
		if c == ':' {
			colon = j
		}
		if charClass[c]&cStop != 0 || c == '@' {
			return false
		}
	}
	if j < 2 || s[j] != '/' || s[j-1] != '/' || s[j-2] != ':' || colon < 0 || colon+1 >= a {
		return false
	}
	v := s[colon+1 : a]
	if maskTokenLen(v) == len(v) || isMaskToken(v) {
		return true
	}
	sc.add(colon+1, a, detSecretAssignment)
	return true
}

// upperA handles 'A': AWS access key ids and Google API keys.
func (sc *scanner) upperA(i int) {
	s, m := sc.s, sc.m
	if sc.wordBefore(i) || i+20 > len(s) {
		return
	}
	if m.enabled[detAWSAccessKey] {
		p := s[i : i+4]
		if p == "AKIA" || p == "ASIA" || p == "ABIA" || p == "ACCA" || (p[1] == '3' && p[2] == 'T' && (isUpper(p[3]) || isDigit(p[3]))) {
			k := i + 4
			for k < i+20 && (isUpper(s[k]) || isDigit(s[k])) {
				k++
			}
			if k == i+20 && !sc.wordAt(k) {
				sc.add(i, k, detAWSAccessKey)
				return
			}
		}
	}
	if m.enabled[detGoogleAPIKey] && strings.HasPrefix(s[i:], "AIza") && (i == 0 || s[i-1] != '-') {
		if e := sc.span(i+4, cB64URL, 36); e == i+39 && (e == len(s) || charClass[s[e]]&cB64URL == 0) {
			sc.add(i, e, detGoogleAPIKey)
		}
	}
}

// jwt handles 'J' of "eyJ": a JSON Web Token (header.payload.signature, or
// the five parts of a JWE) whose header decodes to a JSON object naming its
// algorithm.
func (sc *scanner) jwt(j int) {
	s := sc.s
	i := j - 2
	if i < 0 || s[i] != 'e' || s[i+1] != 'y' || (i > 0 && (charClass[s[i-1]]&cB64URL != 0 || s[i-1] == '.')) {
		return
	}
	// No part is bounded: a token is masked whole however large its
	// payload. Each run is spanned once, from an "eyJ" that starts it.
	h := sc.span(i, cB64URL, len(s))
	if h-i < 16 || h >= len(s) || s[h] != '.' {
		return
	}
	p := sc.span(h+1, cB64URL, len(s))
	if p-h-1 < 2 || s[h+1] != 'e' || p >= len(s) || s[p] != '.' {
		return
	}
	e := sc.span(p+1, cB64URL, len(s))
	for parts := 3; parts < 5 && e+1 < len(s) && s[e] == '.' && charClass[s[e+1]]&cB64URL != 0; parts++ {
		e = sc.span(e+1, cB64URL, len(s))
	}
	if e < len(s) && (charClass[s[e]]&cB64URL != 0 || s[e] == '.' && e+1 < len(s) && charClass[s[e+1]]&cB64URL != 0) {
		return
	}
	hdr := s[i:h]
	hdr = hdr[:len(hdr)/4*4]
	raw, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		return
	}
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' || !bytes.Contains(raw, []byte(`"alg"`)) && !bytes.Contains(raw, []byte(`"typ"`)) {
		return
	}
	sc.add(i, e, detJWT)
}

// github handles '_': GitHub tokens ghp_/gho_/ghu_/ghs_/ghr_ and
// github_pat_ fine-grained tokens.
func (sc *scanner) github(u int) {
	s, m := sc.s, sc.m
	if !m.enabled[detGitHub] {
		return
	}
	if u >= 3 && s[u-3] == 'g' && s[u-2] == 'h' && strings.IndexByte("posur", s[u-1]) >= 0 && !sc.wordBefore(u-3) {
		e := sc.span(u+1, cDigit|cUpper|cLower, 256)
		if e-u-1 >= 36 && !sc.wordAt(e) {
			sc.add(u-3, e, detGitHub)
		}
		return
	}
	if u >= 6 && s[u-6:u] == "github" && strings.HasPrefix(s[u+1:], "pat_") && !sc.wordBefore(u-6) {
		e := u + 5
		for e < len(s) && e-u < 260 && isWord(s[e]) {
			e++
		}
		if e-u-5 >= 22 && !sc.wordAt(e) {
			sc.add(u-6, e, detGitHub)
		}
	}
}

var gitlabPrefixes = []string{"glpat", "gldt", "glrt", "glptt", "glft", "glcbt", "gloas", "glimt", "glagent", "glsoat", "glffct", "glwt"}

// dash handles '-': PEM private key blocks, GitLab tokens and Slack tokens.
// It returns the end of a private key block so the scan skips its body.
func (sc *scanner) dash(d int) int {
	s, m := sc.s, sc.m
	if d+11 <= len(s) && s[d+1] == '-' && m.enabled[detPrivateKey] && (d == 0 || s[d-1] != '-') && strings.HasPrefix(s[d:], "-----BEGIN ") {
		return sc.privateKey(d)
	}
	if d < 4 || !isLower(s[d-1]) {
		return 0
	}
	if m.enabled[detSlack] && s[d-4] == 'x' {
		p := s[d-4 : d]
		if (p == "xoxb" || p == "xoxp" || p == "xoxa" || p == "xoxr" || p == "xoxs" || p == "xoxo" || p == "xoxe" || p == "xapp") && !sc.wordBefore(d-4) {
			e := sc.spanSlack(d + 1)
			if e-d-1 >= 10 && !sc.wordAt(e) {
				sc.add(d-4, e, detSlack)
			}
		}
		return 0
	}
	if m.enabled[detGitLab] {
		b := d
		for b > 0 && d-b < 8 && isLower(s[b-1]) {
			b--
		}
		if d-b < 4 || s[b] != 'g' || s[b+1] != 'l' || sc.wordBefore(b) {
			return 0
		}
		w := s[b:d]
		for _, p := range gitlabPrefixes {
			if w == p {
				e := sc.span(d+1, cB64URL|cKey, 512)
				for e > d+1 && (s[e-1] == '.' || s[e-1] == '-') {
					e--
				}
				if e-d-1 >= 20 {
					sc.add(b, e, detGitLab)
				}
				break
			}
		}
	}
	return 0
}

// spanSlack returns the end of a Slack token body: letters, digits, dashes.
func (sc *scanner) spanSlack(i int) int {
	s := sc.s
	k := i
	for k < len(s) && k-i < 256 && (isAlnum(s[k]) || s[k] == '-') {
		k++
	}
	for k > i && s[k-1] == '-' {
		k--
	}
	return k
}

// privateKey masks a PEM private key block from its BEGIN line through its END
// line, however long the block. A block cut short (no END line) is masked
// through the end of its base64 body.
func (sc *scanner) privateKey(d int) int {
	s := sc.s
	const begin = "-----BEGIN "
	lim := d + len(begin) + 64
	if lim > len(s) {
		lim = len(s)
	}
	h := strings.Index(s[d+len(begin):lim], "-----")
	if h < 0 {
		return 0
	}
	label := s[d+len(begin) : d+len(begin)+h]
	if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
		return 0
	}
	body := d + len(begin) + h + 5
	end := body
	if x := sc.nextPEMEnd(body); x >= 0 {
		end = x + len("-----END ")
		if y := strings.Index(s[end:min(end+64, len(s))], "-----"); y >= 0 {
			end += y + 5
		}
	} else {
		for end < len(s) {
			c := s[end]
			if charClass[c]&(cB64|cKey) != 0 || c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\\' || c == ':' || c == ',' {
				end++
				continue
			}
			break
		}
	}
	sc.add(d, end, detPrivateKey)
	return end
}

// nextPEMEnd returns the offset of the first "-----END " at or after from,
// or -1. It remembers its last answer, so that many BEGIN lines without an
// END cost one search, not one each.
func (sc *scanner) nextPEMEnd(from int) int {
	if sc.pemKnown && from >= sc.pemFrom && (sc.pemEnd < 0 || sc.pemEnd >= from) {
		return sc.pemEnd
	}
	sc.pemKnown, sc.pemFrom, sc.pemEnd = true, from, -1
	if x := strings.Index(sc.s[from:], "-----END "); x >= 0 {
		sc.pemEnd = from + x
	}
	return sc.pemEnd
}

// Secret key kinds for assignments.
const (
	keyNone = iota
	keySecret
	keyAWSSecret
	keyAuthorization
)

// secretSuffixes end the normalised (lower-case, letters and digits) names of
// keys whose values are secrets.
var secretSuffixes = []string{
	"password", "passwd", "passphrase", "secret", "secretkey", "apikey", "apitoken",
	"accesstoken", "authtoken", "refreshtoken", "sessiontoken", "bearertoken", "idtoken",
	"token", "privatekey", "signingkey", "encryptionkey", "accesskeysecret",
}

// notSecretSuffixes are key names ending like a secret that are not one.
var notSecretSuffixes = []string{
	"progresstoken", "pagetoken", "nexttoken", "continuationtoken", "resumetoken",
	"synctoken", "cancellationtoken", "cursortoken", "maxtoken", "numtoken",
}

// keyKind classifies an assignment or JSON key name.
func keyKind(key string) int {
	var buf [64]byte
	n := len(buf)
	for k := len(key) - 1; k >= 0 && n > 0; k-- {
		c := key[k]
		switch {
		case isLower(c) || isDigit(c):
		case isUpper(c):
			c += 'a' - 'A'
		default:
			continue
		}
		n--
		buf[n] = c
	}
	norm := buf[n:]
	if len(norm) < 5 {
		return keyNone
	}
	if bytes.HasSuffix(norm, []byte("secretaccesskey")) || bytes.Contains(norm, []byte("awssecret")) {
		return keyAWSSecret
	}
	if bytes.HasSuffix(norm, []byte("authorization")) {
		return keyAuthorization
	}
	for _, x := range notSecretSuffixes {
		if bytes.HasSuffix(norm, []byte(x)) {
			return keyNone
		}
	}
	for _, x := range secretSuffixes {
		if bytes.HasSuffix(norm, []byte(x)) {
			return keySecret
		}
	}
	return keyNone
}

// secretKeyTail is a cheap first test at every '=' and ':': the last three
// letters of every secret key name, lower-cased.
func secretKeyTail(s string) bool {
	if len(s) < 3 {
		return false
	}
	a, b, c := s[len(s)-3]|0x20, s[len(s)-2]|0x20, s[len(s)-1]|0x20
	switch {
	case a == 'o' && b == 'r' && c == 'd', // password
		a == 's' && b == 'w' && c == 'd', // passwd
		a == 'a' && b == 's' && c == 'e', // passphrase
		a == 'r' && b == 'e' && c == 't', // secret
		a == 'k' && b == 'e' && c == 'y', // api_key, private_key
		a == 'k' && b == 'e' && c == 'n', // token
		a == 'i' && b == 'o' && c == 'n': // authorization
		return true
	}
	return false
}

// assign handles '=' and ':': `password=…`, `"api_key": "…"`,
// `Authorization: Bearer …` and AWS secret access keys, plus Slack webhook
// URLs at "https:".
func (sc *scanner) assign(x int) {
	s, m := sc.s, sc.m
	if s[x] == ':' && x+2 < len(s) && s[x+1] == '/' && s[x+2] == '/' {
		if m.enabled[detSlack] && x >= 5 && s[x-5:x] == "https" && strings.HasPrefix(s[x+1:], "//hooks.slack.com/services/") {
			st := x + 1 + len("//hooks.slack.com/services/")
			e := st
			for e < len(s) && e-st < 256 && (isAlnum(s[e]) || s[e] == '/') {
				e++
			}
			if e-st >= 20 {
				sc.add(st, e, detSlack)
			}
		}
		return
	}
	if !m.enabled[detSecretAssignment] && !m.enabled[detAWSSecretKey] {
		return
	}
	if x+1 < len(s) && (s[x+1] == s[x] || s[x] == '=' && s[x+1] == '~') {
		return // "==", "::", "=~"
	}
	// The key: identifier characters before the separator, after an
	// optional closing quote (possibly escaped) and spaces.
	k := x
	for k > 0 && x-k < 4 && s[k-1] == ' ' {
		k--
	}
	if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
		k--
		if k > 0 && s[k-1] == '\\' {
			k--
		}
	}
	if k < 3 || !secretKeyTail(s[k-3:k]) {
		return
	}
	if s[x] == '=' && (s[k-1] == '!' || s[k-1] == '<' || s[k-1] == '>') {
		return
	}
	j := k
	for j > 0 && k-j < 64 && charClass[s[j-1]]&cKey != 0 {
		j--
	}
	if j == k || (j > 0 && charClass[s[j-1]]&cKey != 0) {
		return
	}
	kind := keyKind(s[j:k])
	if kind == keyNone {
		return
	}
	// The value.
	v := x + 1
	for v < len(s) && v-x <= 8 && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v >= len(s) {
		return
	}
	var e int
	cut := false // the value is longer than maxSecretValue
	switch c := s[v]; {
	case c == '"' || c == '\'' || c == '`':
		v++
		e = v
		for e < len(s) && e-v < maxSecretValue && s[e] != c && s[e] != '\n' && s[e] != '\\' {
			e++
		}
		cut = e-v == maxSecretValue && e < len(s) && s[e] != c && s[e] != '\n' && s[e] != '\\'
	case c == '\\' && v+1 < len(s) && s[v+1] == '"':
		v += 2
		e = v
		for e < len(s) && e-v < maxSecretValue && s[e] != '"' && s[e] != '\\' && s[e] != '\n' {
			e++
		}
		cut = e-v == maxSecretValue && e < len(s) && s[e] != '"' && s[e] != '\\' && s[e] != '\n'
	default:
		e = sc.unquotedEnd(v)
		if kind == keyAuthorization && e < len(s) && s[e] == ' ' && e > v && allLetters(s[v:e]) {
			v = e + 1
			e = sc.unquotedEnd(v)
		}
	}
	if kind == keyAuthorization {
		// "Bearer abc…": keep the scheme, mask the credentials.
		if sp := strings.IndexByte(s[v:e], ' '); sp > 0 && allLetters(s[v:v+sp]) {
			v += sp + 1
		}
	}
	if maskTokenLen(s[v:min(v+100, len(s))]) > 0 || !secretValue(s[v:e]) {
		return
	}
	det := detSecretAssignment
	if kind == keyAWSSecret && e-v == 40 && sc.span(v, cB64, 40) == e {
		det = detAWSSecretKey
	}
	if !m.enabled[det] {
		if !m.enabled[detSecretAssignment] {
			return
		}
		det = detSecretAssignment
	}
	if cut || e-v == maxSecretValue && e < len(s) && charClass[s[e]]&cStop == 0 {
		sc.addWhole(v, e, det) // only part of the value could be found
		return
	}
	sc.add(v, e, det)
}

// maxSecretValue bounds how far an assignment's value is followed. A value
// that goes on past it is not masked in part: the whole text is withheld.
const maxSecretValue = 4096

// unquotedEnd returns the end of an unquoted value starting at v.
func (sc *scanner) unquotedEnd(v int) int {
	s := sc.s
	e := v
	for e < len(s) && e-v < maxSecretValue && charClass[s[e]]&cStop == 0 {
		e++
	}
	return e
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) && !isLower(s[i]) {
			return false
		}
	}
	return s != ""
}

// secretValue reports whether v looks like a real secret rather than an
// empty value, a placeholder, a template or an earlier replacement.
func secretValue(v string) bool {
	if len(v) < 3 || isMaskToken(v) || maskTokenLen(v) > 0 {
		return false
	}
	switch v[0] {
	case '$', '%', '{', '<':
		return false
	}
	switch strings.ToLower(v) {
	case "null", "none", "nil", "true", "false", "undefined", "redacted", "hidden", "required", "optional", "string":
		return false
	}
	return true
}
