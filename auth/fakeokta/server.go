// Package fakeokta is an in-process stand-in for an Okta custom
// authorization server: OIDC discovery, the device authorization grant,
// refresh-token rotation with reuse detection, RS256 JWT access tokens
// (RFC 9068 claims) and a JWKS with key rotation.
//
// It serves tests (mount it on an httptest.Server) and `bridge serve --dev`
// (mount it on the gateway's loopback listener), so it is a plain
// http.Handler with controls for approving logins, rotating keys and
// forging tokens. It never logs a token.
//
// # Issuer
//
// The issuer is a base URL including the authorization server path, for
// example http://127.0.0.1:8787/oauth2/default; endpoints live under that
// path with Okta's names (/v1/token, /v1/keys, ...). Because the port is
// often known only after the listener exists, the issuer may be given in
// Options.Issuer or later with SetIssuer. Until it is set, requests are
// served under /oauth2/default and the issuer is derived from the request's
// Host; Mint needs a set issuer.
package fakeokta

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultPath is the authorization server path used when no issuer is set,
// as in Okta's default custom authorization server.
const DefaultPath = "/oauth2/default"

// User is an identity the fake server can sign in.
type User struct {
	Subject string
	Email   string
	Name    string
	Groups  []string
}

// Options configures New. Zero durations take Okta-like defaults.
type Options struct {
	// Issuer is the issuer URL including its path. It may be left empty
	// and set later with SetIssuer.
	Issuer string
	// ClientID is the only client accepted (a public native app).
	ClientID string
	// Audience is the aud claim of access tokens.
	Audience string
	// Users are the accounts, keyed by username.
	Users map[string]User
	// AutoApprove is the username a visit to /activate approves pending
	// device codes as. Empty means codes are approved only through Approve.
	AutoApprove string
	// AutoApproveOnPoll, with AutoApprove set, approves a pending device
	// code on its first token poll, so a development login needs no
	// browser at all.
	AutoApproveOnPoll bool
	// AccessTokenTTL defaults to one hour.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL defaults to 90 days.
	RefreshTokenTTL time.Duration
	// DeviceCodeTTL defaults to 10 minutes.
	DeviceCodeTTL time.Duration
	// PollInterval is the device-flow polling interval; defaults to 5s.
	PollInterval time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Logf, if set, receives one line per notable event (approvals,
	// refresh-token reuse). Tokens are never logged.
	Logf func(format string, args ...any)
}

// Stats counts what the server has done.
type Stats struct {
	DeviceAuthorizations int // successful /v1/device/authorize calls
	DeviceGrants         int // device codes exchanged for tokens
	RefreshGrants        int // successful refresh_token grants
	RefreshFailures      int // refused refresh_token grants
	ReuseDetected        int // refresh tokens presented after rotation
	JWKSFetches          int // GET /v1/keys
}

// Server is the fake authorization server. It is safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	issuer   string
	keys     []*signingKey // last is current
	rogue    *signingKey   // never published; for SignWithUnknownKey
	devices  map[string]*deviceEntry
	byUser   map[string]*deviceEntry // by user code
	refresh  map[string]*refreshEntry
	families map[string]bool // family id -> revoked
	stats    Stats
}

// New validates opts, fills defaults and generates the first signing key.
func New(opts Options) (*Server, error) {
	if opts.ClientID == "" {
		return nil, errors.New("fakeokta: ClientID is required")
	}
	if opts.Audience == "" {
		return nil, errors.New("fakeokta: Audience is required")
	}
	if opts.AutoApprove != "" {
		if _, ok := opts.Users[opts.AutoApprove]; !ok {
			return nil, fmt.Errorf("fakeokta: AutoApprove user %q is not in Users", opts.AutoApprove)
		}
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = 90 * 24 * time.Hour
	}
	if opts.DeviceCodeTTL <= 0 {
		opts.DeviceCodeTTL = 10 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Server{
		opts:     opts,
		devices:  map[string]*deviceEntry{},
		byUser:   map[string]*deviceEntry{},
		refresh:  map[string]*refreshEntry{},
		families: map[string]bool{},
	}
	if opts.Issuer != "" {
		if err := s.SetIssuer(opts.Issuer); err != nil {
			return nil, err
		}
	}
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s.keys = []*signingKey{k}
	return s, nil
}

// SetIssuer sets the issuer URL, typically once the listener's address is
// known. Endpoints are then served under its path.
func (s *Server) SetIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("fakeokta: invalid issuer %q", issuer)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = strings.TrimRight(issuer, "/")
	return nil
}

// Issuer returns the configured issuer, or "" when it is derived from
// requests.
func (s *Server) Issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	issuer := s.issuerFor(r)
	u, _ := url.Parse(issuer)
	rest, ok := strings.CutPrefix(r.URL.Path, strings.TrimRight(u.Path, "/"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch rest {
	case "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server":
		s.handleMetadata(w, r, issuer)
	case "/v1/keys":
		s.handleKeys(w, r)
	case "/v1/device/authorize":
		s.handleDeviceAuthorize(w, r, issuer)
	case "/v1/token":
		s.handleToken(w, r, issuer)
	case "/activate":
		s.handleActivate(w, r)
	default:
		http.NotFound(w, r)
	}
}

// issuerFor returns the configured issuer or one derived from r.
func (s *Server) issuerFor(r *http.Request) string {
	s.mu.Lock()
	iss := s.issuer
	s.mu.Unlock()
	if iss != "" {
		return iss
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + DefaultPath
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, issuer string) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + "/v1/authorize",
		"token_endpoint":                        issuer + "/v1/token",
		"device_authorization_endpoint":         issuer + "/v1/device/authorize",
		"jwks_uri":                              issuer + "/v1/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"grant_types_supported": []string{
			"urn:ietf:params:oauth:grant-type:device_code", "refresh_token",
		},
		"scopes_supported": []string{"openid", "profile", "email", "offline_access", "groups"},
	})
}

// RotateKeys makes a new signing key current. Older keys stay in the JWKS,
// so tokens they signed still verify, until DropOldKeys.
func (s *Server) RotateKeys() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	return nil
}

// DropOldKeys removes every key but the current one from the JWKS.
func (s *Server) DropOldKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = s.keys[len(s.keys)-1:]
}

// CurrentKeyID returns the kid of the current signing key.
func (s *Server) CurrentKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1].kid
}

// PublicKey returns the current signing key's public half.
func (s *Server) PublicKey() *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.keys[len(s.keys)-1].priv.PublicKey
}

// Approve approves a pending device code as username.
func (s *Server) Approve(userCode, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.opts.Users[username]; !ok {
		return fmt.Errorf("fakeokta: unknown user %q", username)
	}
	d, err := s.pendingLocked(userCode)
	if err != nil {
		return err
	}
	d.state = stateApproved
	d.username = username
	s.opts.Logf("fakeokta: device login %s approved as %s", d.userCode, username)
	return nil
}

// Deny denies a pending device code.
func (s *Server) Deny(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.pendingLocked(userCode)
	if err != nil {
		return err
	}
	d.state = stateDenied
	s.opts.Logf("fakeokta: device login %s denied", d.userCode)
	return nil
}

// PendingUserCodes returns the user codes waiting for a decision, sorted.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var out []string
	for code, d := range s.byUser {
		if d.state == statePending && now.Before(d.expires) {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) pendingLocked(userCode string) (*deviceEntry, error) {
	d, ok := s.byUser[normalizeUserCode(userCode)]
	if !ok {
		return nil, fmt.Errorf("fakeokta: unknown user code %q", userCode)
	}
	if !s.opts.Now().Before(d.expires) {
		return nil, fmt.Errorf("fakeokta: user code %q expired", userCode)
	}
	if d.state != statePending {
		return nil, fmt.Errorf("fakeokta: user code %q is not pending", userCode)
	}
	return d, nil
}

// randomString returns n random characters from alphabet.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
