package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/connect"
)

// autoLogin is the token source of `bridge connect`: when there is no
// usable login it runs the device flow itself, once for all waiting
// requests, instead of failing. The URL and code go to stderr (which MCP
// clients show in their logs), to the agent as a log message, and, when the
// agent supports URL elicitation, as a link it can show the user.
type autoLogin struct {
	src     *auth.Source
	f       *Factory
	home    string
	gateway string
	browser bool
	log     io.Writer

	mu   sync.Mutex
	link connect.AgentLink
	busy chan struct{} // closed when the running login ends
	err  error
}

func (a *autoLogin) setLink(l connect.AgentLink) {
	a.mu.Lock()
	a.link = l
	a.mu.Unlock()
}

// Token returns a token, logging in first when needed.
func (a *autoLogin) Token(ctx context.Context) (auth.Secret, error) {
	tok, err := a.src.Token(ctx)
	if err == nil || !errors.Is(err, auth.ErrNotLoggedIn) {
		return tok, err
	}
	if err := a.login(ctx); err != nil {
		return "", err
	}
	return a.src.Token(ctx)
}

// Invalidate forwards to the store-backed source.
func (a *autoLogin) Invalidate(ctx context.Context, used auth.Secret) { a.src.Invalidate(ctx, used) }

// login runs one device flow; concurrent callers wait for it.
func (a *autoLogin) login(ctx context.Context) error {
	a.mu.Lock()
	if a.busy == nil {
		a.busy = make(chan struct{})
		go a.run(a.busy)
	}
	busy := a.busy
	a.mu.Unlock()
	select {
	case <-busy:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.err
	if a.busy == busy {
		a.busy = nil // a later failure may try again
	}
	return err
}

func (a *autoLogin) run(done chan struct{}) {
	defer close(done)
	// The login outlives any one request: it ends when the user acts.
	ctx := context.Background()
	err := a.deviceLogin(ctx)
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *autoLogin) deviceLogin(ctx context.Context) error {
	hc := a.f.HTTPClient()
	bc, err := auth.FetchBridgeConfiguration(ctx, hc, a.gateway)
	var unreachable *url.Error
	if errors.As(err, &unreachable) {
		// Say what failed: the gateway did not answer, not the login.
		return fmt.Errorf("cannot reach the bridge gateway at %s to start a login (%w); check that it is running and reachable", a.gateway, unreachable.Err)
	}
	if err != nil {
		return fmt.Errorf("cannot start a login: %w", err)
	}
	a.mu.Lock()
	link := a.link
	a.mu.Unlock()
	fmt.Fprintf(a.log, "bridge: not logged in to %s; starting a login\n", a.gateway)
	login := &auth.DeviceLogin{Config: *bc, HTTPClient: hc, Stderr: a.log, Now: a.f.Now,
		Announce: func(url string) {
			if link != nil {
				link.Notify("warning", "bridge: log in to use this server: open "+url)
				link.OpenURL(url, "Log in to your company's bridge gateway to use this MCP server.")
			}
		}}
	if a.browser {
		// Only then: DeviceLogin says a browser window was opened.
		login.OpenBrowser = a.f.OpenBrowser
	}
	tok, err := login.Run(ctx)
	if err != nil {
		return err
	}
	if err := a.src.Store.Save(a.gateway, tok); err != nil {
		return fmt.Errorf("saving the token: %w", err)
	}
	if err := auth.SaveProfile(a.home, &auth.Profile{Gateway: a.gateway, Issuer: bc.Issuer, ClientID: bc.ClientID,
		Audience: bc.Audience, Scopes: bc.Scopes, InsecureStorage: isFileStore(a.src.Store)}); err != nil {
		return fmt.Errorf("saving the profile: %w", err)
	}
	a.src.Issuer, a.src.ClientID = bc.Issuer, bc.ClientID
	fmt.Fprintf(a.log, "bridge: logged in to %s\n", a.gateway)
	return nil
}

func isFileStore(s auth.Store) bool {
	_, ok := s.(*auth.FileStore)
	return ok
}
