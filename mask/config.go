package mask

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// DefaultProfileName is the profile used when a server or policy rule names none.
const DefaultProfileName = "default"

// minPseudonymKeyLen is the shortest pseudonym key New accepts. Card numbers and
// SSNs come from small spaces, so the key is all that stops a brute-force search.
const minPseudonymKeyLen = 16

// Config is the `masking:` section of the gateway configuration.
//
//	masking:
//	  pseudonym_key: "${env:MASK_KEY}"      # needed only by style: pseudonym
//	  profiles:
//	    default: {builtins: [credit_card, us_ssn, iban, aws_access_key, github_token, jwt, private_key]}
//	    support:
//	      builtins: [all]
//	      rules: [employee-id]               # omitted: every custom rule applies
//	      style: partial                     # full (default) | partial | pseudonym
//	      styles: {email: pseudonym}         # per detector or rule
//	      binary: refuse                     # scan (default) | refuse | pass
//	      drop_binary: true
//	  rules:
//	    - {name: employee-id, pattern: 'EMP-\d{6}', replace: '[EMPLOYEE-ID]'}
//	    - {name: projects, words: [falcon, "blue heron"]}
//
// The zero Config is valid: it yields a "default" profile with every builtin
// detector and the full replacement style.
type Config struct {
	// Profiles maps a profile name to its settings. A "default" profile with
	// every builtin and every custom rule is added when none is configured.
	Profiles map[string]ProfileConfig `yaml:"profiles"`
	// Rules are custom detectors, available to every profile.
	Rules []RuleConfig `yaml:"rules"`
	// PseudonymKey keys the HMAC behind the pseudonym style. It is a secret:
	// supply it through ${env:…} or ${file:…}. At least 16 bytes.
	PseudonymKey string `yaml:"pseudonym_key"`
}

// ProfileConfig selects the detectors of one profile and how their findings
// are replaced.
type ProfileConfig struct {
	// Builtins names the builtin detectors to run (see Builtins). Empty or
	// [all] means every builtin; [none] means none (custom rules only).
	// Naming ipv4 runs ipv6 too.
	Builtins []string `yaml:"builtins"`
	// Rules names the custom rules to run. Empty or [all] means every rule in
	// Config.Rules; [none] means none.
	Rules []string `yaml:"rules"`
	// Style is the default replacement style: full (the default), partial
	// or pseudonym.
	Style string `yaml:"style"`
	// Styles overrides Style per detector or custom rule name.
	Styles map[string]string `yaml:"styles"`
	// Binary decides what happens to binary content (the base64 "data" of
	// image and audio content, the "blob" of resource contents) whose bytes
	// are not UTF-8 text. Binary that is text is always decoded and masked
	// like any string (and re-encoded when something was masked).
	//   - scan (the default): printable runs inside the bytes (ASCII or
	//     UTF-8, and UTF-16LE) are scanned; when one holds a finding, the
	//     content is withheld (replaced by a short text note).
	//   - refuse: such content is always withheld.
	//   - pass: such content passes unscanned.
	Binary string `yaml:"binary"`
	// DropBinary replaces every image and audio content and blob resource,
	// text or not, with a short text note.
	DropBinary bool `yaml:"drop_binary"`
}

// BinaryMode is a profile's treatment of binary content that is not text.
type BinaryMode string

// Binary modes.
const (
	// BinaryScan scans printable runs and withholds the content when one
	// holds a finding.
	BinaryScan BinaryMode = "scan"
	// BinaryRefuse withholds binary content that is not text.
	BinaryRefuse BinaryMode = "refuse"
	// BinaryPass lets binary content that is not text pass unscanned.
	BinaryPass BinaryMode = "pass"
)

// RuleConfig is a custom detector: a regular expression or a list of words.
type RuleConfig struct {
	// Name identifies the rule in profiles, styles and Counts.
	Name string `yaml:"name"`
	// Pattern is an RE2 regular expression (Go regexp syntax).
	Pattern string `yaml:"pattern"`
	// Words is a list of literal words or phrases, matched case-insensitively
	// as whole words. Exactly one of Pattern and Words is set.
	Words []string `yaml:"words"`
	// Replace is the replacement text. For a pattern, $1 and ${name} expand
	// to submatches. Empty means the profile's style ("[REDACTED:<name>]").
	Replace string `yaml:"replace"`
}

// Style is how a finding is replaced.
type Style string

// Replacement styles.
const (
	// StyleFull replaces the value with "[REDACTED:<detector>]".
	StyleFull Style = "full"
	// StylePartial keeps the last four characters ("************4242") of
	// values of at least eight characters and stars the rest.
	StylePartial Style = "partial"
	// StylePseudonym replaces the value with "[<detector>#<12 hex digits>]",
	// an HMAC-SHA256 of the value under Config.PseudonymKey, so equal values
	// map to equal tokens within a deployment.
	StylePseudonym Style = "pseudonym"
)

// FieldError is one problem in the configuration. Path is relative to the
// `masking:` section, in the form "rules[2].pattern" or
// "profiles.default.builtins[3]".
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// ConfigError lists every problem New found in a Config.
type ConfigError struct {
	Errors []FieldError
}

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return "masking: " + strings.Join(msgs, "; ")
}

// Set is the compiled masking configuration: one Masker per profile. It is
// immutable and safe for concurrent use.
type Set struct {
	profiles map[string]*Masker
}

// Profile returns the masker of the named profile. The empty name means
// DefaultProfileName.
func (s *Set) Profile(name string) (*Masker, bool) {
	if name == "" {
		name = DefaultProfileName
	}
	m, ok := s.profiles[name]
	return m, ok
}

// Names returns the profile names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New compiles cfg. On a configuration problem it returns a *ConfigError
// naming every faulty field; error messages never contain the pseudonym key.
func New(cfg Config) (*Set, error) {
	c := compiler{cfg: cfg}
	rules := c.compileRules()
	profiles := cfg.Profiles
	if _, ok := profiles[DefaultProfileName]; !ok {
		profiles = make(map[string]ProfileConfig, len(cfg.Profiles)+1)
		for k, v := range cfg.Profiles {
			profiles[k] = v
		}
		profiles[DefaultProfileName] = ProfileConfig{}
	}
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	set := &Set{profiles: make(map[string]*Masker, len(profiles))}
	for _, n := range names {
		if m := c.compileProfile(n, profiles[n], rules); m != nil {
			set.profiles[n] = m
		}
	}
	if len(c.errs) > 0 {
		return nil, &ConfigError{Errors: c.errs}
	}
	return set, nil
}

type compiler struct {
	cfg  Config
	errs []FieldError
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (c *compiler) compileRules() map[string]*rule {
	rules := make(map[string]*rule, len(c.cfg.Rules))
	for i, rc := range c.cfg.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		ok := true
		switch {
		case rc.Name == "":
			c.errorf(p+".name", "required")
			ok = false
		case !ruleNameRE.MatchString(rc.Name):
			c.errorf(p+".name", "%q: use letters, digits, '_', '-' and '.'", rc.Name)
			ok = false
		case rc.Name == "all" || rc.Name == "none" || rc.Name == binaryCountName || rc.Name == withheldCountName:
			c.errorf(p+".name", "%q is reserved", rc.Name)
			ok = false
		case builtinIndex(rc.Name) >= 0:
			c.errorf(p+".name", "%q is the name of a builtin detector", rc.Name)
			ok = false
		case rules[rc.Name] != nil:
			c.errorf(p+".name", "duplicate rule name %q", rc.Name)
			ok = false
		}
		r := &rule{name: rc.Name, replace: rc.Replace, index: i}
		switch {
		case rc.Pattern != "" && len(rc.Words) > 0:
			c.errorf(p, "set pattern or words, not both")
			ok = false
		case rc.Pattern != "":
			re, err := regexp.Compile(rc.Pattern)
			switch {
			case err != nil:
				c.errorf(p+".pattern", "%v", err)
				ok = false
			case re.MatchString(""):
				c.errorf(p+".pattern", "matches the empty string")
				ok = false
			default:
				r.re = re
				r.expand = strings.Contains(rc.Replace, "$")
				if rc.Replace != "" && !r.expand && re.MatchString(rc.Replace) {
					c.errorf(p+".replace", "the rule's own pattern matches it, so masking would not be idempotent")
					ok = false
				}
			}
		case len(rc.Words) > 0:
			for j, w := range rc.Words {
				if strings.TrimSpace(w) == "" {
					c.errorf(fmt.Sprintf("%s.words[%d]", p, j), "empty word")
					ok = false
				}
			}
			if ok {
				r.words = newWordMatcher(rc.Words)
				if rc.Replace != "" && r.words.contains(rc.Replace) {
					c.errorf(p+".replace", "contains one of the rule's words, so masking would not be idempotent")
					ok = false
				}
			}
		default:
			c.errorf(p, "set pattern or words")
			ok = false
		}
		if ok {
			rules[rc.Name] = r
		}
	}
	return rules
}

func (c *compiler) compileProfile(name string, pc ProfileConfig, rules map[string]*rule) *Masker {
	p := "profiles." + pathKey(name)
	before := len(c.errs)
	m := &Masker{name: name, dropBinary: pc.DropBinary, binary: BinaryScan}
	if name == "" {
		c.errorf("profiles", "empty profile name")
	}
	switch BinaryMode(pc.Binary) {
	case "", BinaryScan:
	case BinaryRefuse, BinaryPass:
		m.binary = BinaryMode(pc.Binary)
	default:
		c.errorf(p+".binary", "unknown mode %q (known: scan, refuse, pass)", pc.Binary)
	}

	// Builtins.
	var enabled [numBuiltins]bool
	switch {
	case len(pc.Builtins) == 0 || (len(pc.Builtins) == 1 && pc.Builtins[0] == "all"):
		for i := range enabled {
			enabled[i] = true
		}
	case len(pc.Builtins) == 1 && pc.Builtins[0] == "none":
	default:
		for i, b := range pc.Builtins {
			bi := builtinIndex(b)
			if bi < 0 {
				c.errorf(fmt.Sprintf("%s.builtins[%d]", p, i), "unknown detector %q (known: all, none, %s)", b, strings.Join(Builtins(), ", "))
				continue
			}
			enabled[bi] = true
			if bi == detIPv4 {
				enabled[detIPv6] = true // an address family is no reason to leak
			}
		}
	}

	// Custom rules, in configuration order.
	var selected []*rule
	switch {
	case len(pc.Rules) == 0 || (len(pc.Rules) == 1 && pc.Rules[0] == "all"):
		for _, rc := range c.cfg.Rules {
			if r := rules[rc.Name]; r != nil {
				selected = append(selected, r)
			}
		}
	case len(pc.Rules) == 1 && pc.Rules[0] == "none":
	default:
		seen := map[string]bool{}
		for i, rn := range pc.Rules {
			r := rules[rn]
			if r == nil {
				if !c.ruleDeclared(rn) {
					c.errorf(fmt.Sprintf("%s.rules[%d]", p, i), "unknown rule %q", rn)
				}
				continue
			}
			if !seen[rn] {
				seen[rn] = true
				selected = append(selected, r)
			}
		}
		sort.Slice(selected, func(a, b int) bool { return selected[a].index < selected[b].index })
	}

	// Styles.
	def, ok := parseStyle(pc.Style)
	if !ok {
		c.errorf(p+".style", "unknown style %q (known: full, partial, pseudonym)", pc.Style)
	}
	usesPseudonym, pseudonymPath := def == StylePseudonym, p+".style"
	m.style = def
	var stylesKeys []string
	for k := range pc.Styles {
		stylesKeys = append(stylesKeys, k)
	}
	sort.Strings(stylesKeys)
	m.ruleStyle = map[string]Style{}
	for i := range m.builtinStyle {
		m.builtinStyle[i] = def
	}
	for _, r := range selected {
		m.ruleStyle[r.name] = def
	}
	for _, k := range stylesKeys {
		st, ok := parseStyle(pc.Styles[k])
		sp := p + ".styles." + pathKey(k)
		if !ok || pc.Styles[k] == "" {
			c.errorf(sp, "unknown style %q (known: full, partial, pseudonym)", pc.Styles[k])
			continue
		}
		if bi := builtinIndex(k); bi >= 0 {
			m.builtinStyle[bi] = st
		} else if rules[k] != nil || c.ruleDeclared(k) {
			m.ruleStyle[k] = st
		} else {
			c.errorf(sp, "unknown detector or rule %q", k)
			continue
		}
		if st == StylePseudonym && !usesPseudonym {
			usesPseudonym, pseudonymPath = true, sp
		}
	}
	if usesPseudonym {
		switch {
		case c.cfg.PseudonymKey == "":
			c.errorf("pseudonym_key", "required by %s", pseudonymPath)
		case len(c.cfg.PseudonymKey) < minPseudonymKeyLen:
			c.errorf("pseudonym_key", "must be at least %d bytes", minPseudonymKeyLen)
		default:
			m.key = []byte(c.cfg.PseudonymKey)
		}
	}
	if len(c.errs) > before {
		return nil
	}
	m.init(enabled, selected)

	// A replacement another detector of the profile would mask again breaks
	// idempotence; refuse it at load rather than surprise at run time.
	for _, r := range selected {
		if r.replace == "" || r.expand {
			continue
		}
		if out, _ := m.MaskText(r.replace); out != r.replace {
			c.errorf(fmt.Sprintf("rules[%d].replace", r.index), "profile %q would mask the replacement text again", name)
		}
	}
	if len(c.errs) > before {
		return nil
	}
	return m
}

func (c *compiler) ruleDeclared(name string) bool {
	for _, r := range c.cfg.Rules {
		if r.Name == name {
			return true
		}
	}
	return false
}

func parseStyle(s string) (Style, bool) {
	switch Style(s) {
	case "", StyleFull:
		return StyleFull, true
	case StylePartial:
		return StylePartial, true
	case StylePseudonym:
		return StylePseudonym, true
	}
	return "", false
}

// pathKey quotes a map key for a field path when it is not a plain name.
func pathKey(k string) string {
	if k != "" && ruleNameRE.MatchString(k) && !strings.Contains(k, ".") {
		return k
	}
	return "'" + strings.ReplaceAll(k, "'", "''") + "'"
}
