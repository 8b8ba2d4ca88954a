package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// Device login errors, worded for the person running `bridge login`.
var (
	ErrLoginDenied  = errors.New("login was denied in the browser")
	ErrLoginExpired = errors.New("the code expired: run `bridge login` again")
)

// deviceGrantType is the RFC 8628 grant type.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceLogin runs the OAuth 2.0 device authorization grant (RFC 8628)
// against the issuer named by a gateway's BridgeConfiguration.
type DeviceLogin struct {
	// Config names the issuer, client and scopes.
	Config BridgeConfiguration
	// HTTPClient makes every request; nil means a client with a timeout.
	HTTPClient *http.Client
	// OpenBrowser, if set, opens the verification URL. Nil means the URL
	// is only printed (`--no-browser`).
	OpenBrowser func(url string) error
	// Announce, if set, is given the verification URL (with the code
	// when the provider offers one) whether or not a browser is opened,
	// for callers that show it elsewhere too, such as to an agent.
	Announce func(url string)
	// Stderr receives the instructions for the user; nil discards them.
	Stderr io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits between polls; nil means a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Run starts a device login, tells the user where to approve it, polls
// until the identity provider answers, and returns the token. It returns
// ErrLoginDenied or ErrLoginExpired for those outcomes.
//
// The authorization request goes through oauth2.Config.DeviceAuth. Polling
// is done here rather than with oauth2.Config.DeviceAccessToken, whose
// wall-clock ticker cannot be driven by an injected clock; it follows the
// same rules (authorization_pending keeps polling, slow_down adds five
// seconds to the interval for good).
func (l *DeviceLogin) Run(ctx context.Context) (*Token, error) {
	now, sleep := l.Now, l.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepContext
	}
	stderr := l.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	if err := l.Config.Validate(); err != nil {
		return nil, err
	}
	hc := httpClient(l.HTTPClient)
	meta, err := discoverProvider(ctx, hc, l.Config.Issuer)
	if err != nil {
		return nil, err
	}
	if meta.DeviceAuthorizationEndpoint == "" {
		return nil, errors.New("the identity provider does not offer the device authorization grant (enable it on the Okta app)")
	}
	for _, u := range []string{meta.DeviceAuthorizationEndpoint, meta.TokenEndpoint} {
		if err := checkSecureURL(u); err != nil {
			return nil, fmt.Errorf("identity provider endpoint: %w", err)
		}
	}
	scopes := l.Config.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes()
	}
	conf := &oauth2.Config{
		ClientID: l.Config.ClientID,
		Scopes:   scopes,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: meta.DeviceAuthorizationEndpoint,
			TokenURL:      meta.TokenEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
	da, err := conf.DeviceAuth(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err != nil {
		if oe, ok := asOAuthError(err); ok {
			return nil, fmt.Errorf("starting the login: %w", oe)
		}
		return nil, fmt.Errorf("starting the login: %w", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("starting the login: the identity provider's answer is incomplete")
	}

	start := now()
	var deadline time.Time
	if !da.Expiry.IsZero() {
		// oauth2 stores the expiry as a wall-clock instant; turn it back
		// into a lifetime measured on our clock.
		deadline = start.Add(time.Until(da.Expiry))
	}

	fmt.Fprintf(stderr, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if l.Announce != nil {
		link := da.VerificationURIComplete
		if link == "" {
			link = da.VerificationURI
		}
		l.Announce(link)
	}
	if open := da.VerificationURIComplete; open != "" && l.OpenBrowser != nil {
		if err := l.OpenBrowser(open); err != nil {
			fmt.Fprintf(stderr, "Could not open a browser (%v); open the address above yourself.\n", err)
		} else {
			fmt.Fprintln(stderr, "A browser window has been opened; confirm the code there.")
		}
	}
	fmt.Fprintln(stderr, "Waiting for approval…")

	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	form := url.Values{
		"client_id":   {conf.ClientID},
		"grant_type":  {deviceGrantType},
		"device_code": {da.DeviceCode},
	}
	for {
		if err := sleep(ctx, interval); err != nil {
			return nil, err
		}
		if !deadline.IsZero() && !now().Before(deadline) {
			return nil, ErrLoginExpired
		}
		tr, err := postToken(ctx, hc, conf.Endpoint.TokenURL, form)
		if err == nil {
			return tr.toToken(now())
		}
		var oe *oauthError
		if !errors.As(err, &oe) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("waiting for approval: %w", err)
		}
		switch oe.Code {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		case "access_denied":
			return nil, ErrLoginDenied
		case "expired_token":
			return nil, ErrLoginExpired
		default:
			return nil, fmt.Errorf("login failed: %w", oe)
		}
	}
}
