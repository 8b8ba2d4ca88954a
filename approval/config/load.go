package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// MaxFileBytes bounds a configuration file.
const MaxFileBytes = 1 << 20

// Env supplies what Load reads from outside the file: environment variables
// for ${env:NAME} and files for ${file:PATH}.
type Env struct {
	Getenv   func(string) (string, bool)
	ReadFile func(string) ([]byte, error)
}

// OSEnv reads the real environment and file system.
func OSEnv() Env { return Env{Getenv: os.LookupEnv, ReadFile: os.ReadFile} }

// Error is a configuration error at a place in the file.
type Error struct {
	File  string
	Line  int // 0 when unknown
	Field string
	Msg   string

	decoded bool // found while decoding, not by validation
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem Load found.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadFile reads, validates and compiles the configuration at path.
func LoadFile(path string, env Env) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file: pass --config with the gateway's YAML, or use --dev", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(ioLimit(f, MaxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if buf.Len() > MaxFileBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is over %d bytes", MaxFileBytes)}
	}
	return Load(path, buf.Bytes(), env)
}

// Load validates and compiles a configuration held in memory; name is used
// in error messages.
func Load(name string, data []byte, env Env) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file is over %d bytes", MaxFileBytes)}
	}
	// Duplicate keys are left to decode, which reports every one.
	file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, yamlError(name, err)
	}
	if line, what := findForbidden(file); line > 0 {
		return nil, &Error{File: name, Line: line, Msg: "YAML " + what + " are not allowed in the gateway configuration"}
	}
	if len(file.Docs) > 1 {
		return nil, &Error{File: name, Line: nodeLine(file.Docs[1]), Msg: "holds more than one YAML document (---): the gateway reads one"}
	}
	l := &loader{name: name, file: file, env: env}
	cfg, err := l.decode()
	if err != nil {
		return nil, err
	}
	cfg.File = name
	l.defaults(cfg)
	l.validate(cfg)
	if len(l.errs) > 0 {
		return nil, l.report()
	}
	return cfg, nil
}

// decode fills a Config from the syntax tree, recording every unknown key
// and value of the wrong type. The YAML library has panicked on hostile
// input (fuzzing found one); a panic becomes an error, never a crash.
func (l *loader) decode() (cfg *Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, &Error{File: l.name, Msg: "the YAML could not be read"}
		}
	}()
	cfg = &Config{}
	d := &decoder{failed: map[string]bool{}, report: func(line int, path, msg string) {
		l.errs = append(l.errs, &Error{File: l.name, Line: line, Field: path, Msg: msg, decoded: true})
	}}
	l.decodeFailed = d.failed
	if len(l.file.Docs) == 1 && l.file.Docs[0] != nil && l.file.Docs[0].Body != nil {
		d.decode(l.file.Docs[0].Body, reflect.ValueOf(cfg).Elem(), "")
	}
	return cfg, nil
}

// report returns the errors in file order, without repeats, leaving out
// validation errors about a field that could not be decoded at all (they
// would only restate it).
func (l *loader) report() Errors {
	var out Errors
	seen := map[string]bool{}
	for _, e := range l.errs {
		if l.underFailed(e) || seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return lineKey(out[i].Line) < lineKey(out[j].Line) })
	return out
}

// underFailed reports whether e is a validation error at or under a path
// whose value could not be decoded. Decoding errors themselves stay.
func (l *loader) underFailed(e *Error) bool {
	if e.decoded {
		return false
	}
	for p := e.Field; p != ""; p = parentPath(p) {
		if l.decodeFailed[p] {
			return true
		}
	}
	return false
}

// lineKey orders errors without a line after those with one.
func lineKey(line int) int {
	if line <= 0 {
		return int(^uint(0) >> 1)
	}
	return line
}

func yamlError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return &Error{File: name, Line: line, Msg: ye.GetMessage()}
	}
	return &Error{File: name, Msg: "invalid YAML"}
}

// findForbidden returns the line of the first anchor, alias or tag, or 0,
// and what it found. Anchors and aliases allow exponential "billion laughs"
// documents; tags change how values decode. Neither has a use here.
func findForbidden(f *ast.File) (int, string) {
	line, what := 0, ""
	for _, doc := range f.Docs {
		ast.Walk(visitorFunc(func(n ast.Node) bool {
			if line > 0 {
				return false
			}
			switch n.(type) {
			case *ast.AliasNode, *ast.AnchorNode:
				line, what = n.GetToken().Position.Line, "anchors and aliases"
				return false
			case *ast.TagNode:
				line, what = n.GetToken().Position.Line, "tags"
				return false
			}
			return true
		}), doc)
	}
	return line, what
}

type visitorFunc func(ast.Node) bool

func (f visitorFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

type loader struct {
	name string
	file *ast.File
	env  Env
	errs Errors
	// decodeFailed are the paths decode could not read.
	decodeFailed map[string]bool
}

// errorf records a problem with the field at path, given in YAML-path
// style without the leading "$." ("servers.github.command").
func (l *loader) errorf(path, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.name, Line: l.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of path, or of its nearest ancestor that exists.
func (l *loader) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		yp, err := yaml.PathString("$." + quotePath(p))
		if err != nil {
			continue
		}
		n, err := yp.FilterFile(l.file)
		if err == nil && n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
			return n.GetToken().Position.Line
		}
	}
	return 0
}

// quotePath quotes map keys that YAML path syntax cannot take bare.
func quotePath(p string) string {
	parts := splitPath(p)
	var b strings.Builder
	for i, part := range parts {
		if strings.HasPrefix(part, "[") {
			b.WriteString(part)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(part) {
			b.WriteString(part)
		} else {
			b.WriteString("'" + part + "'")
		}
	}
	return b.String()
}

// splitPath splits "a.b[3].c" into ["a", "b", "[3]", "c"].
func splitPath(p string) []string {
	var parts []string
	for _, seg := range strings.Split(p, ".") {
		for seg != "" {
			i := strings.IndexByte(seg, '[')
			switch {
			case i < 0:
				parts = append(parts, seg)
				seg = ""
			case i == 0:
				j := strings.IndexByte(seg, ']')
				if j < 0 {
					parts = append(parts, seg)
					seg = ""
					continue
				}
				parts = append(parts, seg[:j+1])
				seg = seg[j+1:]
			default:
				parts = append(parts, seg[:i])
				seg = seg[i:]
			}
		}
	}
	return parts
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return ""
}

// defaults fills in what the file may omit.
func (l *loader) defaults(c *Config) {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8787"
	}
	if c.Identity.GroupsClaim == "" {
		c.Identity.GroupsClaim = "groups"
	}
	if c.Identity.ClockSkew == 0 {
		c.Identity.ClockSkew = 60 * time.Second
	}
	if len(c.Identity.Scopes) == 0 {
		c.Identity.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "bolt"
	}
	c.Limits.defaults()
}

var serverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (l *loader) validate(c *Config) {
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			l.errorf("public_url", "must be an http(s) URL")
		}
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		l.errorf("tls", "needs both cert_file and key_file")
	}
	id := c.Identity
	if id.Issuer == "" {
		l.errorf("identity.issuer", "is required: the Okta authorization server URL, such as https://example.okta.com/oauth2/default")
	} else if u, err := url.Parse(id.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !isLoopback(u.Hostname())) {
		l.errorf("identity.issuer", "must be an https URL (http only on loopback)")
	}
	if id.Audience == "" {
		l.errorf("identity.audience", "is required: the audience access tokens are issued for, such as api://bridge")
	}
	if id.ClientID == "" {
		l.errorf("identity.client_id", "is required: the client id of the native app `bridge login` uses")
	}
	if id.ClockSkew < 0 || id.ClockSkew > 10*time.Minute {
		l.errorf("identity.clock_skew", "must be between 0 and 10m")
	}
	if c.Storage.Driver != "bolt" {
		l.errorf("storage.driver", "unknown driver %q (supported: bolt)", c.Storage.Driver)
	}
	if c.Storage.Path == "" {
		l.errorf("storage.path", "is required: the file where the gateway keeps its approvals, such as /var/lib/bridge/bridge.db (the audit log goes in the directory beside it named after it, bridge.db.audit)")
	}
	c.Limits.validate(l.errorf)
	c.Approvals.validate(l)
	if len(c.Servers) == 0 {
		l.errorf("servers", "at least one upstream server is required")
	}
	names := make([]string, 0, len(c.Servers))
	for name := range c.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l.validateServer(name, c.Servers[name])
	}
	for i := range c.Notify {
		l.validateNotify(i, &c.Notify[i])
	}

	masks, err := mask.New(c.Masking)
	if err != nil {
		var ce *mask.ConfigError
		if errors.As(err, &ce) {
			for _, fe := range ce.Errors {
				l.errorf("masking."+fe.Path, "%s", fe.Message)
			}
		} else {
			l.errorf("masking", "%v", err)
		}
	}
	c.Masks = masks
	for _, name := range names {
		if sc := c.Servers[name]; sc != nil && sc.Mask != "" && masks != nil {
			p := sc.Mask
			if _, ok := masks.Profile(p); !ok {
				l.errorf("servers."+name+".mask", "unknown masking profile %q", p)
			}
		}
	}

	pol, err := policy.Compile(c.Policy, policy.CompileOptions{KnownServers: names})
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			for _, fe := range ve.Errors {
				l.errorf("policy."+fe.Path, "%s", fe.Message)
			}
		} else {
			l.errorf("policy", "%v", err)
		}
	}
	c.CompiledPolicy = pol
	if pol != nil {
		for _, fe := range pol.Warnings() {
			path := "policy." + fe.Path
			c.Warnings = append(c.Warnings, &Error{File: l.name, Line: l.line(path), Field: path, Msg: fe.Message})
		}
	}
	if err := c.Audit.Validate(); err != nil {
		l.fieldErrors("audit", err)
	}
	if c.Audit.Witness.Webhook && !hasWebhook(c.Notify) {
		l.errorf("audit.witness.webhook", "needs a notify entry of type webhook to post the signed heads to")
	}
	if w := c.Audit.Witness.File; w != "" && (w == c.Storage.Path || strings.HasPrefix(filepath.Clean(w), filepath.Clean(audit.SegmentDir(c.Storage.Path))+string(filepath.Separator))) {
		l.errorf("audit.witness.file", "must not be the data file (storage.path) or inside its audit log directory: a witness keeps the heads where the data file's attacker cannot")
	}
}

func (l *loader) validateServer(name string, s *Server) {
	at := "servers." + name
	if !serverName.MatchString(name) {
		l.errorf(at, "server names are lower-case letters, digits, '-' and '_' (they appear in URLs as /mcp/<name>)")
	}
	if s == nil {
		l.errorf(at, "is empty: give it a transport")
		return
	}
	switch {
	case s.Timeout < 0:
		l.errorf(at+".timeout", "must not be negative (leave it out for the default, %s)", DefaultUpstreamTimeout)
	case s.Timeout == 0:
		s.Timeout = DefaultUpstreamTimeout
	}
	switch s.Transport {
	case "stdio":
		if s.Command == "" {
			l.errorf(at+".command", "is required for transport stdio")
		}
		if s.URL != "" || len(s.Headers) > 0 {
			l.errorf(at, "url and headers are for transport http or sse")
		}
		s.Command = l.expandPlain(at+".command", s.Command)
		for i, a := range s.Args {
			path := fmt.Sprintf("%s.args[%d]", at, i)
			s.Args[i] = expansion.ReplaceAllStringFunc(a, func(ref string) string {
				v := l.expand(path, ref)
				s.ArgSecrets = append(s.ArgSecrets, v)
				return v.Reveal()
			})
		}
		s.ResolvedEnv = map[string]auth.Secret{}
		for k, v := range s.Env {
			s.ResolvedEnv[k] = l.expand(at+".env."+k, v)
		}
	case "http", "sse":
		if s.URL == "" {
			l.errorf(at+".url", "is required for transport %s", s.Transport)
			return
		}
		if s.Command != "" || len(s.Args) > 0 || len(s.Env) > 0 {
			l.errorf(at, "command, args and env are for transport stdio")
		}
		s.ResolvedURL = l.expand(at+".url", s.URL)
		if u, err := url.Parse(s.ResolvedURL.Reveal()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			l.errorf(at+".url", "must be an http(s) URL")
		}
		s.ResolvedHeaders = map[string]auth.Secret{}
		for k, v := range s.Headers {
			s.ResolvedHeaders[k] = l.expand(at+".headers."+k, v)
		}
	case "":
		l.errorf(at+".transport", "is required: stdio, http or sse")
	default:
		l.errorf(at+".transport", "unknown transport %q (want stdio, http or sse)", s.Transport)
	}
}

func (l *loader) validateNotify(i int, n *Notify) {
	at := fmt.Sprintf("notify[%d]", i)
	switch n.Type {
	case "slack":
		if n.WebhookURL == "" {
			l.errorf(at+".webhook_url", "is required for type slack")
			return
		}
		n.ResolvedURL = l.expand(at+".webhook_url", n.WebhookURL)
	case "webhook":
		if n.URL == "" {
			l.errorf(at+".url", "is required for type webhook")
			return
		}
		n.ResolvedURL = l.expand(at+".url", n.URL)
		if n.Secret != "" {
			n.ResolvedSecret = l.expand(at+".secret", n.Secret)
		}
	default:
		l.errorf(at+".type", "unknown notification type %q (want slack or webhook)", n.Type)
	}
}

var expansion = regexp.MustCompile(`\$\{([a-z]+):([^}]*)\}`)

// expand resolves ${env:NAME} and ${file:PATH} in v. Errors name the
// variable or file, never a value.
func (l *loader) expand(path, v string) auth.Secret {
	out := expansion.ReplaceAllStringFunc(v, func(m string) string {
		sub := expansion.FindStringSubmatch(m)
		kind, ref := sub[1], strings.TrimSpace(sub[2])
		switch kind {
		case "env":
			val, ok := l.env.Getenv(ref)
			if !ok {
				l.errorf(path, "environment variable %s is not set", ref)
				return ""
			}
			return val
		case "file":
			b, err := l.env.ReadFile(ref)
			if err != nil {
				l.errorf(path, "cannot read %s: %v", ref, errors.Unwrap(err))
				return ""
			}
			if len(b) > 64<<10 {
				l.errorf(path, "%s is over 64 KiB", ref)
				return ""
			}
			return strings.TrimRight(string(b), "\r\n")
		default:
			l.errorf(path, "unknown expansion ${%s:…}: use ${env:NAME} or ${file:PATH}", kind)
			return ""
		}
	})
	return auth.Secret(out)
}

// expandPlain expands a value that is not secret, such as a command path.
func (l *loader) expandPlain(path, v string) string { return l.expand(path, v).Reveal() }

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// hasWebhook reports whether a notify entry is a webhook.
func hasWebhook(ns []Notify) bool {
	for _, n := range ns {
		if n.Type == "webhook" {
			return true
		}
	}
	return false
}

// fieldErrors records err, and each error it joins, at its own field when it
// is an *audit.FieldError (whose path is already complete), else at path.
func (l *loader) fieldErrors(path string, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			l.fieldErrors(path, e)
		}
		return
	}
	var fe *audit.FieldError
	if errors.As(err, &fe) {
		l.errorf(fe.Path, "%s", fe.Msg)
		return
	}
	l.errorf(path, "%v", err)
}
