package auth

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
)

// fakeClock is a manually advanced clock. Sleep advances it instead of
// waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

const (
	testClientID = "0oa-test-client"
	testAudience = "api://bridge"
)

var testUsers = map[string]fakeokta.User{
	"alice": {Subject: "00u-alice", Email: "alice@example.com", Name: "Alice Doe", Groups: []string{"engineering", "security-reviewers"}},
	"bob":   {Subject: "00u-bob", Email: "bob@example.com", Name: "Bob Roe"},
}

// testOkta is a fake Okta on an httptest server.
type testOkta struct {
	*fakeokta.Server
	ts     *httptest.Server
	issuer string
}

// newOkta starts a fake Okta whose clock is clk. mutate may adjust the
// options before the server is created.
func newOkta(t testing.TB, clk *fakeClock, mutate func(*fakeokta.Options)) *testOkta {
	t.Helper()
	opts := fakeokta.Options{
		ClientID: testClientID,
		Audience: testAudience,
		Users:    testUsers,
		Now:      clk.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := fakeokta.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	issuer := ts.URL + fakeokta.DefaultPath
	if err := srv.SetIssuer(issuer); err != nil {
		t.Fatal(err)
	}
	return &testOkta{Server: srv, ts: ts, issuer: issuer}
}

func (o *testOkta) bridgeConfig() BridgeConfiguration {
	return BridgeConfiguration{
		Issuer:      o.issuer,
		ClientID:    testClientID,
		Audience:    testAudience,
		Scopes:      DefaultScopes(),
		GroupsClaim: "groups",
	}
}
