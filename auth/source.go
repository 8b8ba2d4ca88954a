package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/oauth2"
)

// TokenEnv is the environment variable that supplies an access token
// directly, for automation. See StaticSource.
const TokenEnv = "BRIDGE_TOKEN"

// Source defaults.
const (
	DefaultRefreshBefore = 2 * time.Minute
	DefaultLockTimeout   = 30 * time.Second
	lockRetryDelay       = 25 * time.Millisecond
)

// AccessTokenSource yields the bearer token `bridge connect` sends to the
// gateway.
type AccessTokenSource interface {
	// Token returns an access token valid for at least a little while.
	Token(ctx context.Context) (Secret, error)
	// Invalidate reports that the gateway rejected used (HTTP 401), so the
	// next Token call must not return it.
	Invalidate(ctx context.Context, used Secret)
}

// StaticSource returns a source that always yields tok, the value of
// BRIDGE_TOKEN. It never refreshes; once the gateway rejects the token,
// Token fails with a message naming BRIDGE_TOKEN.
func StaticSource(tok Secret) AccessTokenSource { return &staticSource{tok: tok} }

type staticSource struct {
	mu       sync.Mutex
	tok      Secret
	rejected bool
}

func (s *staticSource) Token(context.Context) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" {
		return "", fmt.Errorf("%s is empty", TokenEnv)
	}
	if s.rejected {
		return "", fmt.Errorf("the gateway rejected the token in %s; supply a fresh one", TokenEnv)
	}
	return s.tok, nil
}

func (s *staticSource) Invalidate(_ context.Context, used Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if used == s.tok {
		s.rejected = true
	}
}

// Source returns access tokens from a Store and refreshes them shortly
// before they expire. Several processes (one `bridge connect` per agent
// server) may share a store: a refresh happens under a cross-process file
// lock on <Home>/refresh.lock, re-reads the store first in case another
// process already refreshed, and saves the rotated refresh token before
// releasing the lock, so each refresh token is presented exactly once.
//
// A Source is safe for concurrent use.
type Source struct {
	// Store holds the token; Key is the gateway URL it is stored under.
	Store Store
	Key   string
	// OAuth names the client and token endpoint used to refresh. If nil,
	// Issuer and ClientID are used to discover the token endpoint on the
	// first refresh.
	OAuth    *oauth2.Config
	Issuer   string
	ClientID string
	// HTTPClient makes the refresh requests; nil means a client with a
	// timeout.
	HTTPClient *http.Client
	// Home is the client's home directory, where the lock file lives.
	Home string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RefreshBefore is how long before expiry a token is refreshed;
	// zero means DefaultRefreshBefore.
	RefreshBefore time.Duration
	// LockTimeout bounds the wait for another process's refresh; zero
	// means DefaultLockTimeout.
	LockTimeout time.Duration

	mu      sync.Mutex
	cached  *Token
	invalid Secret
	conf    *oauth2.Config
}

var _ AccessTokenSource = (*Source)(nil)

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// fresh reports whether t can be used without refreshing.
func (s *Source) fresh(t *Token) bool {
	if t == nil || t.AccessToken == "" || t.AccessToken == s.invalid {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	before := s.RefreshBefore
	if before <= 0 {
		before = DefaultRefreshBefore
	}
	return s.now().Add(before).Before(t.Expiry)
}

// Token implements AccessTokenSource.
func (s *Source) Token(ctx context.Context) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh(s.cached) {
		return s.cached.AccessToken, nil
	}
	tok, err := s.Store.Load(s.Key)
	if err != nil {
		return "", err
	}
	if s.fresh(tok) {
		s.cached = tok
		return tok.AccessToken, nil
	}
	tok, err = s.refreshLocked(ctx)
	if err != nil {
		return "", err
	}
	s.cached = tok
	return tok.AccessToken, nil
}

// Invalidate implements AccessTokenSource. The next Token call refreshes
// unless the stored token has already changed.
func (s *Source) Invalidate(_ context.Context, used Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalid = used
	if s.cached != nil && s.cached.AccessToken == used {
		s.cached = nil
	}
}

// refreshLocked refreshes under the cross-process lock. s.mu is held.
func (s *Source) refreshLocked(ctx context.Context) (*Token, error) {
	if s.Home == "" {
		return nil, errors.New("token source has no home directory for its refresh lock")
	}
	if err := os.MkdirAll(s.Home, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.Home, err)
	}
	timeout := s.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	lockCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := filepath.Join(s.Home, "refresh.lock")
	lock := flock.New(path, flock.SetPermissions(0o600))
	ok, err := lock.TryLockContext(lockCtx, lockRetryDelay)
	if err != nil || !ok {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("waiting for another bridge process to finish refreshing the token (lock %s): timed out", path)
	}
	defer func() { _ = lock.Close() }() // Close unlocks.

	// Another process may have refreshed while we waited.
	tok, err := s.Store.Load(s.Key)
	if err != nil {
		return nil, err
	}
	if s.fresh(tok) {
		return tok, nil
	}
	if tok.RefreshToken == "" {
		return nil, notLoggedIn("the session has expired")
	}
	conf, err := s.oauthConfig(ctx)
	if err != nil {
		return nil, err
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, httpClient(s.HTTPClient))
	ot, err := conf.TokenSource(octx, &oauth2.Token{RefreshToken: tok.RefreshToken.Reveal()}).Token()
	if err != nil {
		if oe, ok := asOAuthError(err); ok {
			if oe.Code == "invalid_grant" {
				return nil, notLoggedIn("the session expired or was revoked")
			}
			return nil, fmt.Errorf("refreshing the access token: %w", oe)
		}
		return nil, fmt.Errorf("refreshing the access token: %w", err)
	}
	next := &Token{
		AccessToken:  Secret(ot.AccessToken),
		RefreshToken: Secret(ot.RefreshToken),
		TokenType:    ot.TokenType,
		Expiry:       ot.Expiry,
		IDToken:      tok.IDToken,
	}
	if ot.ExpiresIn > 0 {
		next.Expiry = s.now().Add(time.Duration(ot.ExpiresIn) * time.Second)
	}
	if id, ok := ot.Extra("id_token").(string); ok && id != "" {
		next.IDToken = Secret(id)
	}
	if next.AccessToken == "" {
		return nil, errors.New("refreshing the access token: the identity provider returned no access token")
	}
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken
	}
	// Save before unlocking: the old refresh token is now spent.
	if err := s.Store.Save(s.Key, next); err != nil {
		return nil, fmt.Errorf("saving the refreshed token: %w", err)
	}
	return next, nil
}

// oauthConfig returns the refresh configuration, discovering the token
// endpoint once if needed.
func (s *Source) oauthConfig(ctx context.Context) (*oauth2.Config, error) {
	if s.conf != nil {
		return s.conf, nil
	}
	var conf oauth2.Config
	if s.OAuth != nil {
		conf = *s.OAuth
	} else {
		if s.Issuer == "" || s.ClientID == "" {
			return nil, errors.New("token source has neither OAuth nor Issuer and ClientID")
		}
		meta, err := discoverProvider(ctx, httpClient(s.HTTPClient), s.Issuer)
		if err != nil {
			return nil, err
		}
		if err := checkSecureURL(meta.TokenEndpoint); err != nil {
			return nil, fmt.Errorf("identity provider token endpoint: %w", err)
		}
		conf = oauth2.Config{ClientID: s.ClientID, Endpoint: oauth2.Endpoint{TokenURL: meta.TokenEndpoint}}
	}
	if conf.ClientSecret == "" && conf.Endpoint.AuthStyle == oauth2.AuthStyleAutoDetect {
		// A public client: send client_id in the form, never a Basic header.
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	s.conf = &conf
	return s.conf, nil
}
