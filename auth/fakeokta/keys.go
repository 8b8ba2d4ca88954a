package fakeokta

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// signingKey is an RSA key with its key id.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakeokta: generating key: %w", err)
	}
	return &signingKey{kid: rand.Text()[:16], priv: priv}, nil
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	s.stats.JWKSFetches++
	set := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig",
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// MintOptions changes how Mint builds a token. Zero values give what the
// server itself would issue.
type MintOptions struct {
	// Audience overrides the aud claim.
	Audience string
	// Issuer overrides the iss claim.
	Issuer string
	// TTL overrides the access-token lifetime; negative gives a token that
	// has already expired.
	TTL time.Duration
	// NotBefore sets the nbf claim (default: now).
	NotBefore time.Time
	// Alg is the JWS algorithm: "" or "RS256" (default), another RSA
	// algorithm ("RS384", "RS512", "PS256", ...), "none" for an unsigned
	// token, or "HS256" for a token MACed with the current public key's
	// DER bytes (the RS/HS confusion attack).
	Alg string
	// Kid overrides the kid header.
	Kid string
	// Type overrides the typ header (default "at+jwt").
	Type string
	// SignWithUnknownKey signs with a key that is not in the JWKS.
	SignWithUnknownKey bool
	// Claims are merged over the standard claims; a nil value deletes one.
	Claims map[string]any
}

// Mint returns an access token for username as the server would issue it,
// modified by opts, so tests can forge tokens. The issuer must be set.
func (s *Server) Mint(username string, opts MintOptions) (string, error) {
	s.mu.Lock()
	issuer := s.issuer
	s.mu.Unlock()
	if issuer == "" {
		return "", errors.New("fakeokta: Mint needs an issuer: set Options.Issuer or call SetIssuer")
	}
	u, ok := s.opts.Users[username]
	if !ok {
		return "", fmt.Errorf("fakeokta: unknown user %q", username)
	}
	now := s.opts.Now()
	claims := s.accessClaims(issuer, u, []string{"openid", "profile", "email", "offline_access"}, now)
	if opts.Issuer != "" {
		claims["iss"] = opts.Issuer
	}
	if opts.Audience != "" {
		claims["aud"] = opts.Audience
	}
	if opts.TTL != 0 {
		claims["exp"] = now.Add(opts.TTL).Unix()
	}
	if !opts.NotBefore.IsZero() {
		claims["nbf"] = opts.NotBefore.Unix()
	}
	for k, v := range opts.Claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	typ := opts.Type
	if typ == "" {
		typ = "at+jwt"
	}

	s.mu.Lock()
	key := s.keys[len(s.keys)-1]
	if opts.SignWithUnknownKey {
		if s.rogue == nil {
			s.mu.Unlock()
			rogue, err := newSigningKey()
			if err != nil {
				return "", err
			}
			s.mu.Lock()
			if s.rogue == nil {
				s.rogue = rogue
			}
		}
		key = &signingKey{kid: key.kid, priv: s.rogue.priv}
	}
	s.mu.Unlock()
	kid := key.kid
	if opts.Kid != "" {
		kid = opts.Kid
	}

	switch opts.Alg {
	case "none":
		return unsignedJWT(typ, kid, payload), nil
	case "HS256", "HS384", "HS512":
		der, err := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
		if err != nil {
			return "", err
		}
		return signJWT(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(opts.Alg), Key: der}, typ, kid, payload)
	case "":
		opts.Alg = string(jose.RS256)
	}
	return signJWT(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(opts.Alg), Key: key.priv}, typ, kid, payload)
}

// sign signs payload with the current key, as the server issues tokens.
func (s *Server) sign(typ string, payload []byte) (string, error) {
	s.mu.Lock()
	key := s.keys[len(s.keys)-1]
	s.mu.Unlock()
	return signJWT(jose.SigningKey{Algorithm: jose.RS256, Key: key.priv}, typ, key.kid, payload)
}

func signJWT(key jose.SigningKey, typ, kid string, payload []byte) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), kid)
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", fmt.Errorf("fakeokta: signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("fakeokta: signing: %w", err)
	}
	return obj.CompactSerialize()
}

// unsignedJWT builds an alg=none JWT, which go-jose refuses to produce.
func unsignedJWT(typ, kid string, payload []byte) string {
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": typ, "kid": kid})
	enc := base64.RawURLEncoding
	return enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload) + "."
}

// accessClaims returns RFC 9068 access-token claims for u, in Okta's shape.
func (s *Server) accessClaims(issuer string, u User, scopes []string, now time.Time) map[string]any {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{
		"ver":       1,
		"iss":       issuer,
		"sub":       u.Subject,
		"aud":       s.opts.Audience,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(s.opts.AccessTokenTTL).Unix(),
		"jti":       "AT." + rand.Text(),
		"client_id": s.opts.ClientID,
		"cid":       s.opts.ClientID,
		"scp":       scopes,
		"groups":    groups,
		"email":     u.Email,
		"name":      u.Name,
	}
}

// idClaims returns ID-token claims for u.
func (s *Server) idClaims(issuer string, u User, now time.Time) map[string]any {
	return map[string]any{
		"iss":   issuer,
		"sub":   u.Subject,
		"aud":   s.opts.ClientID,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"email": u.Email,
		"name":  u.Name,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
