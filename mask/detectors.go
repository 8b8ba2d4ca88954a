package mask

// Builtin detectors, in the order of builtinNames.
const (
	detCreditCard = iota
	detSSN
	detIBAN
	detEmail
	detPhone
	detIPv4
	detIPv6
	detAWSAccessKey
	detAWSSecretKey
	detGitHub
	detGitLab
	detSlack
	detGoogleAPIKey
	detJWT
	detPrivateKey
	detSecretAssignment
	numBuiltins
)

// builtinNames are the detector names used in configuration and Counts.
var builtinNames = [numBuiltins]string{
	detCreditCard:       "credit_card",
	detSSN:              "us_ssn",
	detIBAN:             "iban",
	detEmail:            "email",
	detPhone:            "phone",
	detIPv4:             "ipv4",
	detIPv6:             "ipv6",
	detAWSAccessKey:     "aws_access_key",
	detAWSSecretKey:     "aws_secret_key",
	detGitHub:           "github_token",
	detGitLab:           "gitlab_token",
	detSlack:            "slack_token",
	detGoogleAPIKey:     "google_api_key",
	detJWT:              "jwt",
	detPrivateKey:       "private_key",
	detSecretAssignment: "secret_assignment",
}

// builtinPriority decides the name of a replacement when findings overlap:
// the most specific detector wins. Custom rules outrank every builtin.
var builtinPriority = [numBuiltins]int{
	detPrivateKey:       90,
	detJWT:              85,
	detAWSAccessKey:     80,
	detAWSSecretKey:     80,
	detGitHub:           80,
	detGitLab:           80,
	detSlack:            80,
	detGoogleAPIKey:     80,
	detCreditCard:       70,
	detSSN:              70,
	detIBAN:             70,
	detEmail:            60,
	detPhone:            50,
	detIPv4:             40,
	detIPv6:             41,
	detSecretAssignment: 10,
}

// builtinTriggers are the bytes at which each detector looks for a finding
// ('0' stands for every digit). The scanner skips all other bytes.
var builtinTriggers = [numBuiltins]string{
	detCreditCard:       "0",
	detSSN:              "0",
	detIBAN:             "0",
	detPhone:            "0",
	detIPv4:             "0",
	detIPv6:             ":",
	detEmail:            "@",
	detAWSAccessKey:     "A",
	detGoogleAPIKey:     "A",
	detJWT:              "J",
	detGitHub:           "_",
	detGitLab:           "-",
	detSlack:            "-:",
	detPrivateKey:       "-",
	detAWSSecretKey:     "=:",
	detSecretAssignment: "=:@",
}

// Builtins returns the names of the builtin detectors.
func Builtins() []string {
	out := make([]string, numBuiltins)
	copy(out, builtinNames[:])
	return out
}

func builtinIndex(name string) int {
	for i, n := range builtinNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Trigger classes.
const (
	trigNone uint8 = iota
	trigDigit
	trigAt
	trigUpperA
	trigJ
	trigUnderscore
	trigDash
	trigAssign // '=': assignments
	trigColon  // ':': assignments and IPv6 addresses
	trigHigh   // the lead byte of a multi-byte UTF-8 sequence
)

func trigClass(c byte) uint8 {
	switch c {
	case '@':
		return trigAt
	case 'A':
		return trigUpperA
	case 'J':
		return trigJ
	case '_':
		return trigUnderscore
	case '-':
		return trigDash
	case '=':
		return trigAssign
	case ':':
		return trigColon
	}
	return trigNone
}

// Character classes.
const (
	cDigit = 1 << iota
	cUpper
	cLower
	cB64URL // A-Z a-z 0-9 - _
	cB64    // A-Z a-z 0-9 + /
	cLocal  // email local part
	cKey    // assignment key: A-Z a-z 0-9 _ - .
	cStop   // ends an unquoted assignment value
)

var charClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cB64URL | cB64 | cLocal | cKey
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper | cB64URL | cB64 | cLocal | cKey
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower | cB64URL | cB64 | cLocal | cKey
	}
	t['-'] |= cB64URL | cLocal | cKey
	t['_'] |= cB64URL | cLocal | cKey
	t['+'] |= cB64 | cLocal
	t['/'] |= cB64
	t['.'] |= cLocal | cKey
	t['%'] |= cLocal
	for _, c := range " \t\r\n,;&\"'`<>(){}[]\\|" {
		t[c] |= cStop
	}
	return t
}()

func isDigit(c byte) bool { return charClass[c]&cDigit != 0 }
func isUpper(c byte) bool { return charClass[c]&cUpper != 0 }
func isLower(c byte) bool { return charClass[c]&cLower != 0 }
func isAlnum(c byte) bool { return charClass[c]&(cDigit|cUpper|cLower) != 0 }
func isWord(c byte) bool  { return isAlnum(c) || c == '_' }

// scanner finds the builtin detectors' findings in one text.
type scanner struct {
	m   *Masker
	s   string
	out []match
	// folded says s is already the normalised view; otherwise the scan
	// stops and sets fold at the first rune that normalisation changes.
	folded, fold bool
	// pemEnd caches the search for a PEM END line once pemKnown: the
	// offset of the first "-----END " at or after pemFrom, or -1 for none.
	pemFrom, pemEnd int
	pemKnown        bool
	// v6Done is the end of the last IPv6 candidate examined.
	v6Done int
}

func (sc *scanner) add(start, end, det int) {
	sc.out = append(sc.out, match{start: start, end: end, det: det})
}

// addWhole records a finding whose end a detector could not reach.
func (sc *scanner) addWhole(start, end, det int) {
	sc.out = append(sc.out, match{start: start, end: end, det: det, whole: true})
}

// wordBefore reports whether the byte before i is a word character.
func (sc *scanner) wordBefore(i int) bool { return i > 0 && isWord(sc.s[i-1]) }

// wordAt reports whether the byte at i is a word character.
func (sc *scanner) wordAt(i int) bool { return i < len(sc.s) && isWord(sc.s[i]) }

// run makes the single pass over the trigger bytes in s[lo:hi]: only they
// cost more than a table look-up, and each detector validates around its
// trigger, looking at most rescanWindow bytes away.
func (sc *scanner) run(lo, hi int) {
	s, trig := sc.s, &sc.m.trig
	for i := lo; i < hi; i++ {
		t := trig[s[i]]
		if t == trigNone {
			continue
		}
		switch t {
		case trigDigit:
			i = sc.digits(i) - 1
		case trigAt:
			sc.at(i)
		case trigUpperA:
			sc.upperA(i)
		case trigJ:
			sc.jwt(i)
		case trigUnderscore:
			sc.github(i)
		case trigDash:
			if e := sc.dash(i); e > i {
				i = e - 1
			}
		case trigAssign:
			sc.assign(i)
		case trigColon:
			sc.assign(i)
			if sc.m.enabled[detIPv6] && i >= sc.v6Done {
				sc.ipv6(i)
			}
		case trigHigh:
			if sc.folded {
				continue
			}
			need, size := needsFold(s, i)
			if need {
				sc.fold = true
				return
			}
			i += size - 1
		}
	}
}
