package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// countingVerifier accepts the tokens it knows, counting every call.
type countingVerifier struct {
	mu     sync.Mutex
	calls  map[string]int
	tokens map[string]*auth.Identity
	err    error // returned for unknown tokens
}

func (v *countingVerifier) Verify(_ context.Context, raw string) (*auth.Identity, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls[raw]++
	id, ok := v.tokens[raw]
	if !ok {
		return nil, v.err
	}
	cp := *id
	cp.Groups = append([]string(nil), id.Groups...)
	return &cp, nil
}

func (v *countingVerifier) count(raw string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[raw]
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCacheFixture(skew time.Duration) (*verifyCache, *countingVerifier, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	v := &countingVerifier{calls: map[string]int{}, tokens: map[string]*auth.Identity{}, err: &auth.TokenError{Reason: "bad signature"}}
	return newVerifyCache(v, clock.now, skew), v, clock
}

func TestVerifyCacheRemembersAcceptedTokens(t *testing.T) {
	c, v, clock := newCacheFixture(30 * time.Second)
	v.tokens["tok-a"] = &auth.Identity{Subject: "alice", Groups: []string{"eng"}, ExpiresAt: clock.now().Add(time.Hour)}
	v.tokens["tok-b"] = &auth.Identity{Subject: "bob", ExpiresAt: clock.now().Add(time.Hour)}
	for range 3 {
		id, err := c.Verify(context.Background(), "tok-a")
		if err != nil || id.Subject != "alice" {
			t.Fatalf("Verify = %+v, %v", id, err)
		}
		id.Groups[0] = "tampered" // a caller's change must not reach the cache
		id.Subject = "mallory"
	}
	if n := v.count("tok-a"); n != 1 {
		t.Errorf("the verifier ran %d times for one token, want 1", n)
	}
	id, _ := c.Verify(context.Background(), "tok-a")
	if id.Subject != "alice" || id.Groups[0] != "eng" {
		t.Errorf("cached identity changed: %+v", id)
	}
	if id, _ := c.Verify(context.Background(), "tok-b"); id.Subject != "bob" {
		t.Errorf("another token got %+v", id)
	}
}

func TestVerifyCacheNeverRemembersFailures(t *testing.T) {
	c, v, _ := newCacheFixture(0)
	for range 3 {
		if _, err := c.Verify(context.Background(), "forged"); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("err = %v, want an invalid-token error", err)
		}
	}
	v.err = fmt.Errorf("jwks: %w", auth.ErrVerifierUnavailable)
	for range 2 {
		if _, err := c.Verify(context.Background(), "forged"); !errors.Is(err, auth.ErrVerifierUnavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	}
	if n := v.count("forged"); n != 5 {
		t.Errorf("the verifier ran %d times, want every time (5)", n)
	}
	if c.len() != 0 {
		t.Errorf("the cache holds %d entries after failures", c.len())
	}
}

func TestVerifyCacheEndsAtExpiryWithSkew(t *testing.T) {
	c, v, clock := newCacheFixture(30 * time.Second)
	v.tokens["tok"] = &auth.Identity{Subject: "alice", ExpiresAt: clock.now().Add(time.Minute)}
	if _, err := c.Verify(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute + 29*time.Second) // past exp, within the skew
	if _, err := c.Verify(context.Background(), "tok"); err != nil || v.count("tok") != 1 {
		t.Fatalf("within the skew: err %v, verifier calls %d, want the cached answer", err, v.count("tok"))
	}
	clock.advance(time.Second) // exp + skew: the verifier decides again
	delete(v.tokens, "tok")    // and, the token being expired, rejects it
	if _, err := c.Verify(context.Background(), "tok"); err == nil {
		t.Fatal("an expired token was accepted from the cache")
	}
	if v.count("tok") != 2 {
		t.Errorf("verifier calls = %d, want 2", v.count("tok"))
	}
}

func TestVerifyCacheBoundsTrustInTime(t *testing.T) {
	c, v, clock := newCacheFixture(0)
	v.tokens["tok"] = &auth.Identity{Subject: "alice", ExpiresAt: clock.now().Add(24 * time.Hour)}
	c.Verify(context.Background(), "tok")
	clock.advance(verifyCacheTTL - time.Second)
	c.Verify(context.Background(), "tok")
	if v.count("tok") != 1 {
		t.Fatalf("verifier calls = %d before the cache TTL, want 1", v.count("tok"))
	}
	clock.advance(time.Second)
	c.Verify(context.Background(), "tok")
	if v.count("tok") != 2 {
		t.Errorf("verifier calls = %d after the cache TTL, want 2", v.count("tok"))
	}
}

func TestVerifyCacheSkipsTokensWithoutExpiry(t *testing.T) {
	c, v, _ := newCacheFixture(0)
	v.tokens["tok"] = &auth.Identity{Subject: "alice"}
	c.Verify(context.Background(), "tok")
	c.Verify(context.Background(), "tok")
	if v.count("tok") != 2 || c.len() != 0 {
		t.Errorf("a token without expiry was cached (calls %d, entries %d)", v.count("tok"), c.len())
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	c, v, clock := newCacheFixture(0)
	c.size = 16
	for i := range 200 {
		tok := fmt.Sprintf("tok-%d", i)
		v.tokens[tok] = &auth.Identity{Subject: tok, ExpiresAt: clock.now().Add(time.Hour)}
		if id, err := c.Verify(context.Background(), tok); err != nil || id.Subject != tok {
			t.Fatalf("Verify(%s) = %+v, %v", tok, id, err)
		}
		if c.len() > c.size {
			t.Fatalf("the cache grew to %d entries, bound %d", c.len(), c.size)
		}
	}
	// Evicted tokens are simply verified again.
	if id, err := c.Verify(context.Background(), "tok-0"); err != nil || id.Subject != "tok-0" {
		t.Fatalf("Verify(tok-0) = %+v, %v", id, err)
	}
}

func TestVerifyCacheConcurrent(t *testing.T) {
	c, v, clock := newCacheFixture(0)
	for i := range 8 {
		tok := fmt.Sprintf("tok-%d", i)
		v.tokens[tok] = &auth.Identity{Subject: tok, ExpiresAt: clock.now().Add(time.Hour)}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := fmt.Sprintf("tok-%d", (g+i)%8)
				if id, err := c.Verify(context.Background(), tok); err != nil || id.Subject != tok {
					t.Errorf("Verify(%s) = %+v, %v", tok, id, err)
					return
				}
				if i%50 == 0 {
					clock.advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}
