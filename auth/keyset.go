package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksFetchTimeout bounds one discovery + JWKS fetch. The fetch does not
// follow the triggering request's cancellation, so one impatient client
// cannot poison the cache for everyone else.
const jwksFetchTimeout = 10 * time.Second

// keySet is an oidc.KeySet over the issuer's JWKS. Unlike oidc's
// RemoteKeySet it discovers the JWKS URL lazily, bounds response sizes,
// classifies failures (unavailable vs. bad signature), and refetches for
// an unknown kid at most once per minInterval, so a flood of tokens with
// forged kids cannot turn the gateway into a JWKS amplifier.
type keySet struct {
	issuer      string
	hc          *http.Client
	now         func() time.Time
	minInterval time.Duration

	fetching chan struct{} // one-slot semaphore serialising fetches

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	jwksURI   string
	lastFetch time.Time // last attempt, successful or not
	lastErr   error     // error of the last attempt
}

func newKeySet(issuer string, hc *http.Client, now func() time.Time, minInterval time.Duration) *keySet {
	return &keySet{
		issuer:      issuer,
		hc:          hc,
		now:         now,
		minInterval: minInterval,
		fetching:    make(chan struct{}, 1),
	}
}

// verifyStateKey carries a *verifyState through oidc.IDTokenVerifier into
// VerifySignature.
type verifyStateKey struct{}

// verifyState passes the pre-parsed JWS in and the classified outcome out
// of VerifySignature, because oidc flattens the KeySet's error to text.
type verifyState struct {
	jws     *jose.JSONWebSignature
	payload []byte
	err     error
}

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	st, _ := ctx.Value(verifyStateKey{}).(*verifyState)
	if st == nil || st.jws == nil {
		return nil, invalidToken("malformed token")
	}
	st.payload, st.err = ks.verify(ctx, st.jws)
	return st.payload, st.err
}

func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, invalidToken("malformed token")
	}
	hdr := jws.Signatures[0].Header
	cands := ks.lookup(hdr.KeyID, hdr.Algorithm)
	if len(cands) == 0 {
		err := ks.refresh(ctx, hdr.KeyID, hdr.Algorithm)
		cands = ks.lookup(hdr.KeyID, hdr.Algorithm)
		if len(cands) == 0 {
			if err != nil {
				return nil, err
			}
			return nil, invalidToken("unknown signing key")
		}
	}
	for i := range cands {
		if payload, err := jws.Verify(&cands[i]); err == nil {
			return payload, nil
		}
	}
	return nil, invalidToken("bad signature")
}

// lookup returns the cached keys that may have signed a token with this
// kid and alg. A token without a kid may match any key.
func (ks *keySet) lookup(kid, alg string) []jose.JSONWebKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []jose.JSONWebKey
	for _, k := range ks.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		out = append(out, k)
	}
	return out
}

// refresh refetches the JWKS unless another fetch already found the key or
// the last attempt was less than minInterval ago. It returns an error
// wrapping ErrVerifierUnavailable when the keys could not be fetched.
func (ks *keySet) refresh(ctx context.Context, kid, alg string) error {
	select {
	case ks.fetching <- struct{}{}:
		defer func() { <-ks.fetching }()
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrVerifierUnavailable, ctx.Err())
	}
	if len(ks.lookup(kid, alg)) > 0 {
		return nil
	}
	ks.mu.RLock()
	last, lastErr := ks.lastFetch, ks.lastErr
	ks.mu.RUnlock()
	if !last.IsZero() && ks.now().Sub(last) < ks.minInterval {
		return lastErr
	}

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	keys, uri, err := ks.fetch(fctx)

	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.lastFetch = ks.now()
	if err != nil {
		ks.lastErr = fmt.Errorf("%w: %v", ErrVerifierUnavailable, err)
		return ks.lastErr
	}
	ks.lastErr = nil
	ks.jwksURI = uri
	ks.keys = keys
	return nil
}

// fetch discovers the JWKS URL (once) and downloads the keys.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, string, error) {
	ks.mu.RLock()
	uri := ks.jwksURI
	ks.mu.RUnlock()
	if uri == "" {
		meta, err := discoverProvider(ctx, ks.hc, ks.issuer)
		if err != nil {
			return nil, "", err
		}
		if meta.JWKSURI == "" {
			return nil, "", errors.New("identity provider discovery has no jwks_uri")
		}
		uri = meta.JWKSURI
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, ks.hc, uri, maxDiscoveryBody, &doc); err != nil {
		return nil, "", fmt.Errorf("fetching signing keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			continue // unsupported key types are ignored, per RFC 7517 §5
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, "", errors.New("the identity provider's JWKS has no usable signing keys")
	}
	return keys, uri, nil
}
