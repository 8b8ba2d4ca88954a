package auth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
)

// decide returns a Sleep that advances clk and, on the nth call, runs act
// with the single pending user code.
func decide(t *testing.T, clk *fakeClock, o *testOkta, n int, act func(code string) error) func(context.Context, time.Duration) error {
	calls := 0
	return func(ctx context.Context, d time.Duration) error {
		calls++
		if calls == n {
			codes := o.PendingUserCodes()
			if len(codes) != 1 {
				t.Errorf("pending codes = %v, want one", codes)
			} else if err := act(codes[0]); err != nil {
				t.Error(err)
			}
		}
		return clk.Sleep(ctx, d)
	}
}

func TestDeviceLoginApproved(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	var stderr bytes.Buffer
	var opened string
	l := &DeviceLogin{
		Config:      o.bridgeConfig(),
		HTTPClient:  o.ts.Client(),
		OpenBrowser: func(u string) error { opened = u; return nil },
		Stderr:      &stderr,
		Now:         clk.Now,
		Sleep:       decide(t, clk, o, 2, func(code string) error { return o.Approve(code, "alice") }),
	}
	start := clk.Now()
	tok, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("incomplete token: %+v", tok)
	}
	// Two polls at 5s intervals, then one hour of lifetime, on the fake clock.
	if want := start.Add(10*time.Second + time.Hour); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", tok.Expiry, want)
	}
	if !strings.Contains(opened, "/activate?user_code=") {
		t.Errorf("browser opened %q, want verification_uri_complete", opened)
	}
	out := stderr.String()
	if !strings.Contains(out, o.issuer+"/activate") || !strings.Contains(out, "enter the code") {
		t.Errorf("instructions missing from stderr: %q", out)
	}
	if strings.Contains(out, tok.AccessToken.Reveal()) {
		t.Error("access token printed to stderr")
	}
	v := newTestVerifier(t, o, clk, nil)
	id, err := v.Verify(context.Background(), tok.AccessToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "alice@example.com" {
		t.Errorf("identity %+v", id)
	}
}

func TestDeviceLoginOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(*fakeokta.Options)
		act  func(o *testOkta, code string) error
		want error
	}{
		{"denied", nil, func(o *testOkta, code string) error { return o.Deny(code) }, ErrLoginDenied},
		{"expired", func(o *fakeokta.Options) { o.DeviceCodeTTL = time.Minute }, nil, ErrLoginExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			o := newOkta(t, clk, tc.opts)
			sleep := clk.Sleep
			if tc.act != nil {
				sleep = decide(t, clk, o, 1, func(code string) error { return tc.act(o, code) })
			}
			l := &DeviceLogin{Config: o.bridgeConfig(), HTTPClient: o.ts.Client(), Now: clk.Now, Sleep: sleep}
			_, err := l.Run(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDeviceLoginExpiredByServer checks the server's expired_token answer
// (not only the local deadline) maps to ErrLoginExpired.
func TestDeviceLoginExpiredByServer(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	calls := 0
	l := &DeviceLogin{
		Config: o.bridgeConfig(), HTTPClient: o.ts.Client(),
		// The local clock stands still while the server's runs ahead.
		Now: func() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) },
		Sleep: func(ctx context.Context, d time.Duration) error {
			calls++
			if calls == 2 {
				clk.Advance(time.Hour)
			}
			clk.Advance(d)
			return nil
		},
	}
	if _, err := l.Run(context.Background()); !errors.Is(err, ErrLoginExpired) {
		t.Fatalf("err = %v, want ErrLoginExpired", err)
	}
}

func TestDeviceLoginSlowDown(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	var waits []time.Duration
	l := &DeviceLogin{
		Config: o.bridgeConfig(), HTTPClient: o.ts.Client(), Now: clk.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			switch len(waits) {
			case 2:
				clk.Advance(d / 2) // poll too early: the server says slow_down
				return nil
			case 3:
				if err := o.Approve(o.PendingUserCodes()[0], "bob"); err != nil {
					t.Error(err)
				}
			}
			return clk.Sleep(ctx, d)
		},
	}
	if _, err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits = %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", waits, want)
		}
	}
}

func TestDeviceLoginErrors(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	cfg := o.bridgeConfig()
	cfg.ClientID = "wrong-client"
	l := &DeviceLogin{Config: cfg, HTTPClient: o.ts.Client(), Now: clk.Now, Sleep: clk.Sleep}
	_, err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("err = %v, want invalid_client", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	l = &DeviceLogin{Config: o.bridgeConfig(), HTTPClient: o.ts.Client(), Now: clk.Now,
		Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }}
	if _, err := l.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestDeviceLoginAutoApproveOnPoll(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, func(opts *fakeokta.Options) {
		opts.AutoApprove = "alice"
		opts.AutoApproveOnPoll = true
	})
	l := &DeviceLogin{Config: o.bridgeConfig(), HTTPClient: o.ts.Client(), Now: clk.Now, Sleep: clk.Sleep}
	if _, err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceLoginNoBrowser: without OpenBrowser (--no-browser) nothing
// claims a browser was opened, and Announce still gets the link.
func TestDeviceLoginNoBrowser(t *testing.T) {
	clk := newClock()
	o := newOkta(t, clk, nil)
	var stderr bytes.Buffer
	var announced string
	l := &DeviceLogin{
		Config:     o.bridgeConfig(),
		HTTPClient: o.ts.Client(),
		Announce:   func(u string) { announced = u },
		Stderr:     &stderr,
		Now:        clk.Now,
		Sleep:      decide(t, clk, o, 1, func(code string) error { return o.Approve(code, "alice") }),
	}
	if _, err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "browser") {
		t.Errorf("stderr mentions a browser although none was opened: %q", stderr.String())
	}
	if !strings.Contains(announced, "/activate?user_code=") {
		t.Errorf("announced %q, want verification_uri_complete", announced)
	}
}
