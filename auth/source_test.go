package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// loggedIn runs a device login against o and saves the token for gw in a
// file store under home.
func loggedIn(t *testing.T, o *testOkta, clk *fakeClock, home string) *Token {
	t.Helper()
	l := &DeviceLogin{
		Config: o.bridgeConfig(), HTTPClient: o.ts.Client(), Now: clk.Now,
		Sleep: decide(t, clk, o, 1, func(code string) error { return o.Approve(code, "alice") }),
	}
	tok, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := (&FileStore{Dir: TokensDir(home)}).Save(gw, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func newSource(o *testOkta, clk *fakeClock, home string) *Source {
	return &Source{
		Store:      &FileStore{Dir: TokensDir(home)},
		Key:        gw,
		Issuer:     o.issuer,
		ClientID:   testClientID,
		HTTPClient: o.ts.Client(),
		Home:       home,
		Now:        clk.Now,
	}
}

func TestSourceRefresh(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	home := t.TempDir()
	first := loggedIn(t, o, clk, home)
	src := newSource(o, clk, home)
	ctx := context.Background()

	got, err := src.Token(ctx)
	if err != nil || got != first.AccessToken {
		t.Fatalf("fresh token: %v (same=%v)", err, got == first.AccessToken)
	}
	if n := o.Stats().RefreshGrants; n != 0 {
		t.Fatalf("refreshed a fresh token (%d grants)", n)
	}

	clk.Advance(time.Hour - DefaultRefreshBefore + time.Second) // inside the refresh window
	got, err = src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got == first.AccessToken {
		t.Fatal("token inside the refresh window was not refreshed")
	}
	stored, err := src.Store.Load(gw)
	if err != nil {
		t.Fatal(err)
	}
	if stored.AccessToken != got || stored.RefreshToken == first.RefreshToken || stored.RefreshToken == "" {
		t.Fatal("rotated tokens were not saved")
	}
	if want := clk.Now().Add(time.Hour); !stored.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v (measured on the injected clock)", stored.Expiry, want)
	}
	if n := o.Stats().RefreshGrants; n != 1 {
		t.Fatalf("refresh grants = %d, want 1", n)
	}

	// After a 401, the next call refreshes even though the token looks fresh.
	src.Invalidate(ctx, got)
	again, err := src.Token(ctx)
	if err != nil || again == got {
		t.Fatalf("after Invalidate: %v (same=%v)", err, again == got)
	}
	if n := o.Stats().RefreshGrants; n != 2 {
		t.Fatalf("refresh grants = %d, want 2", n)
	}
}

// TestSourceInvalidateAfterOtherRefresh checks that Invalidate does not
// refresh when another process already replaced the stored token.
func TestSourceInvalidateAfterOtherRefresh(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	home := t.TempDir()
	loggedIn(t, o, clk, home)
	a, b := newSource(o, clk, home), newSource(o, clk, home)
	ctx := context.Background()
	old, err := a.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Invalidate(ctx, old)
	if _, err := b.Token(ctx); err != nil { // b refreshes
		t.Fatal(err)
	}
	a.Invalidate(ctx, old)
	got, err := a.Token(ctx) // a finds b's token in the store
	if err != nil || got == old {
		t.Fatalf("a: %v (same=%v)", err, got == old)
	}
	if n := o.Stats().RefreshGrants; n != 1 {
		t.Fatalf("refresh grants = %d, want 1", n)
	}
}

func TestSourceNotLoggedIn(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	ctx := context.Background()

	t.Run("empty store", func(t *testing.T) {
		_, err := newSource(o, clk, t.TempDir()).Token(ctx)
		if !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "bridge login") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		home := t.TempDir()
		_ = (&FileStore{Dir: TokensDir(home)}).Save(gw, &Token{AccessToken: "x", Expiry: clk.Now().Add(-time.Minute)})
		_, err := newSource(o, clk, home).Token(ctx)
		if !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "bridge login") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("revoked family", func(t *testing.T) {
		home := t.TempDir()
		tok := loggedIn(t, o, clk, home)
		src := newSource(o, clk, home)
		src.Invalidate(ctx, tok.AccessToken)
		if _, err := src.Token(ctx); err != nil {
			t.Fatal(err)
		}
		// Put the spent refresh token back, as a stale copy would: Okta
		// sees reuse and revokes the family.
		_ = src.Store.Save(gw, tok)
		src2 := newSource(o, clk, home)
		src2.Invalidate(ctx, tok.AccessToken)
		_, err := src2.Token(ctx)
		if !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "bridge login") {
			t.Fatalf("err = %v", err)
		}
		if o.Stats().ReuseDetected == 0 {
			t.Fatal("fake Okta did not detect reuse")
		}
	})
}

func TestStaticSource(t *testing.T) {
	ctx := context.Background()
	s := StaticSource("static-secret")
	got, err := s.Token(ctx)
	if err != nil || got.Reveal() != "static-secret" {
		t.Fatalf("Token = %v", err)
	}
	s.Invalidate(ctx, "other")
	if _, err := s.Token(ctx); err != nil {
		t.Fatal(err)
	}
	s.Invalidate(ctx, "static-secret")
	if _, err := s.Token(ctx); err == nil || !strings.Contains(err.Error(), TokenEnv) || strings.Contains(err.Error(), "static-secret") {
		t.Fatalf("after rejection: %v", err)
	}
	if _, err := StaticSource("").Token(ctx); err == nil {
		t.Fatal("empty static token accepted")
	}
}

// TestSourceConcurrentRefresh runs several independent Sources over one
// home against a fake Okta that rotates refresh tokens and revokes the
// family on reuse: exactly one refresh grant may happen, and every caller
// gets the new token.
func TestSourceConcurrentRefresh(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	home := t.TempDir()
	first := loggedIn(t, o, clk, home)
	clk.Advance(time.Hour) // expired
	ctx := context.Background()

	const n = 8
	results := make([]Secret, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		src := newSource(o, clk, home) // a separate object, like a separate process
		wg.Go(func() {
			<-start
			results[i], errs[i] = src.Token(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("source %d: %v", i, errs[i])
		}
		if results[i] == first.AccessToken || results[i] != results[0] {
			t.Fatalf("source %d got a different or stale token", i)
		}
	}
	st := o.Stats()
	if st.RefreshGrants != 1 || st.RefreshFailures != 0 || st.ReuseDetected != 0 {
		t.Fatalf("stats %+v, want exactly one successful refresh grant", st)
	}
}

// The cross-process test re-executes the test binary. Children refresh
// against the parent's fake Okta through the shared home; they use the
// real clock, so the parent stores an already-expired token.
const (
	childEnv       = "BRIDGE_AUTH_TEST_REFRESH_CHILD"
	childHome      = "BRIDGE_AUTH_TEST_HOME"
	childTokenURL  = "BRIDGE_AUTH_TEST_TOKEN_URL"
	childStartFile = "BRIDGE_AUTH_TEST_START"
)

func TestRefreshChildProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper for TestSourceCrossProcessRefresh")
	}
	// Spin until the parent releases every child at once.
	for {
		if _, err := os.Stat(os.Getenv(childStartFile)); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	home := os.Getenv(childHome)
	src := &Source{
		Store: &FileStore{Dir: TokensDir(home)},
		Key:   gw,
		OAuth: &oauth2.Config{ClientID: testClientID, Endpoint: oauth2.Endpoint{TokenURL: os.Getenv(childTokenURL)}},
		Home:  home,
	}
	if _, err := src.Token(context.Background()); err != nil {
		fmt.Println("child error:", err) // never the token
		os.Exit(3)
	}
}

func TestSourceCrossProcessRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip("no test executable:", err)
	}
	clk := newClock()
	o := newOkta(t, clk, nil)
	home := t.TempDir()
	tok := loggedIn(t, o, clk, home)
	tok.Expiry = time.Now().Add(-time.Minute) // expired on the children's real clock
	store := &FileStore{Dir: TokensDir(home)}
	if err := store.Save(gw, tok); err != nil {
		t.Fatal(err)
	}
	startFile := home + "/start"

	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range n {
		cmd := exec.Command(exe, "-test.run=^TestRefreshChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			childEnv+"=1", childHome+"="+home, childTokenURL+"="+o.issuer+"/v1/token", childStartFile+"="+startFile)
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	if err := os.WriteFile(startFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	st := o.Stats()
	if st.RefreshGrants != 1 || st.RefreshFailures != 0 {
		t.Fatalf("stats %+v, want exactly one refresh grant across %d processes", st, n)
	}
	after, err := store.Load(gw)
	if err != nil {
		t.Fatal(err)
	}
	if after.AccessToken == tok.AccessToken || after.RefreshToken == tok.RefreshToken {
		t.Fatal("the rotated token was not saved")
	}
}
