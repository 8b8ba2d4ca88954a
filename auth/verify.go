package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Verification errors. Every rejection of a token wraps ErrInvalidToken
// (through a *TokenError whose Reason is safe to show the client); a
// failure to reach the issuer or its keys wraps ErrVerifierUnavailable and
// should be answered with 503. Neither ever contains the token.
var (
	ErrInvalidToken        = errors.New("invalid token")
	ErrVerifierUnavailable = errors.New("token verification unavailable")
)

// TokenError is a token rejection. Reason is short and safe to return to
// the client, e.g. in WWW-Authenticate's error_description.
type TokenError struct {
	Reason string
}

// Error returns "invalid token: " and the reason.
func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidToken) hold.
func (e *TokenError) Unwrap() error { return ErrInvalidToken }

func invalidToken(reason string) error { return &TokenError{Reason: reason} }

// Verifier defaults and limits.
const (
	DefaultJWKSRefreshMinInterval = 30 * time.Second
	maxTokenSize                  = 16 << 10
)

// signingAlgs are the asymmetric algorithms accepted. "none" and every
// HMAC algorithm are excluded: an HS256 token "signed" with the issuer's
// public key must never verify.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// VerifierConfig configures NewVerifier.
type VerifierConfig struct {
	// Issuer must equal the tokens' iss claim exactly, e.g.
	// https://example.okta.com/oauth2/default.
	Issuer string
	// Audience must appear in the tokens' aud claim.
	Audience string
	// GroupsClaim names the claim holding the user's groups (an array of
	// strings). Empty means groups are not read.
	GroupsClaim string
	// ClockSkew is tolerated on exp and nbf.
	ClockSkew time.Duration
	// HTTPClient fetches discovery and keys; nil means a client with a
	// timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// JWKSRefreshMinInterval is the least time between two key fetches;
	// zero means DefaultJWKSRefreshMinInterval.
	JWKSRefreshMinInterval time.Duration
}

// Identity is who a verified access token speaks for.
type Identity struct {
	Subject   string
	Email     string
	Name      string
	ClientID  string
	Groups    []string
	ExpiresAt time.Time
}

// Verifier checks Okta access tokens (JWTs) on the gateway. It discovers
// the issuer lazily, so the gateway starts even while the issuer is down,
// and caches the signing keys. It is safe for concurrent use.
type Verifier struct {
	cfg  VerifierConfig
	keys *keySet
	oidc *oidc.IDTokenVerifier
}

// NewVerifier validates cfg and returns a Verifier. It makes no network
// request.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("verifier: issuer is required")
	}
	if err := checkSecureURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("verifier: issuer: %w", err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("verifier: audience is required")
	}
	if cfg.ClockSkew < 0 {
		return nil, errors.New("verifier: clock skew must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JWKSRefreshMinInterval <= 0 {
		cfg.JWKSRefreshMinInterval = DefaultJWKSRefreshMinInterval
	}
	ks := newKeySet(cfg.Issuer, httpClient(cfg.HTTPClient), cfg.Now, cfg.JWKSRefreshMinInterval)
	algs := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		algs[i] = string(a)
	}
	ov := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: algs,
		SkipExpiryCheck:      true, // checked below with ClockSkew
		Now:                  cfg.Now,
	})
	return &Verifier{cfg: cfg, keys: ks, oidc: ov}, nil
}

// jwtHeader is the part of the JOSE header checked before any key is used.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

// claims are the access-token claims the gateway reads.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    *float64 `json:"exp"`
	NotBefore *float64 `json:"nbf"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	ClientID  string   `json:"client_id"`
	CID       string   `json:"cid"` // Okta's name for client_id
}

// audience accepts aud as a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// Verify checks rawToken's algorithm, type, signature, issuer, audience,
// expiry and not-before, and returns the identity it carries. Errors wrap
// ErrInvalidToken or ErrVerifierUnavailable.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Identity, error) {
	if rawToken == "" {
		return nil, invalidToken("missing token")
	}
	if len(rawToken) > maxTokenSize {
		return nil, invalidToken("token too large")
	}
	if err := checkHeader(rawToken); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSigned(rawToken, signingAlgs)
	if err != nil {
		return nil, invalidToken("malformed token")
	}
	st := &verifyState{jws: jws}
	if _, err := v.oidc.Verify(context.WithValue(ctx, verifyStateKey{}, st), rawToken); err != nil {
		switch {
		case st.err != nil:
			return nil, st.err
		case st.payload == nil:
			return nil, invalidToken("malformed token")
		}
		return nil, classifyClaims(st.payload, v.cfg)
	}
	var c claims
	if err := json.Unmarshal(st.payload, &c); err != nil {
		return nil, invalidToken("malformed claims")
	}
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	if c.Expiry == nil {
		return nil, invalidToken("token has no expiry")
	}
	exp := numericDate(*c.Expiry)
	if now.After(exp.Add(skew)) {
		return nil, invalidToken("token expired")
	}
	if c.NotBefore != nil && now.Add(skew).Before(numericDate(*c.NotBefore)) {
		return nil, invalidToken("token not yet valid")
	}
	if c.Subject == "" {
		return nil, invalidToken("token has no subject")
	}
	id := &Identity{
		Subject:   c.Subject,
		Email:     c.Email,
		Name:      c.Name,
		ClientID:  c.ClientID,
		ExpiresAt: exp,
	}
	if id.ClientID == "" {
		id.ClientID = c.CID
	}
	if v.cfg.GroupsClaim != "" {
		groups, err := readGroups(st.payload, v.cfg.GroupsClaim)
		if err != nil {
			return nil, err
		}
		id.Groups = groups
	}
	return id, nil
}

// checkHeader rejects tokens whose algorithm or type is not acceptable,
// before any key is looked up.
func checkHeader(raw string) error {
	seg, _, ok := strings.Cut(raw, ".")
	if !ok {
		return invalidToken("malformed token")
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return invalidToken("malformed token")
	}
	var h jwtHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return invalidToken("malformed token")
	}
	if !slices.Contains(signingAlgs, jose.SignatureAlgorithm(h.Alg)) {
		return invalidToken("unsupported algorithm")
	}
	switch strings.ToLower(h.Typ) {
	case "", "jwt", "at+jwt", "application/at+jwt", "application/jwt":
	default:
		return invalidToken("unsupported token type")
	}
	return nil
}

// classifyClaims explains why oidc rejected a token whose signature was
// good: its checks after the signature are issuer and audience.
func classifyClaims(payload []byte, cfg VerifierConfig) error {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return invalidToken("malformed claims")
	}
	if c.Issuer != cfg.Issuer {
		return invalidToken("wrong issuer")
	}
	if !slices.Contains(c.Audience, cfg.Audience) {
		return invalidToken("wrong audience")
	}
	return invalidToken("malformed claims")
}

// readGroups reads an array-of-strings claim; a missing or null claim is
// no groups.
func readGroups(payload []byte, name string) ([]string, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil {
		return nil, invalidToken("malformed claims")
	}
	raw, ok := all[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var groups []string
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, invalidToken("malformed groups claim")
	}
	return groups, nil
}

// numericDate converts a JWT NumericDate (seconds, possibly fractional).
func numericDate(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}
