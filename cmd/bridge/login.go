package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// LoginOptions are the flags and dependencies of `bridge login`.
type LoginOptions struct {
	F               *Factory
	Gateway         string
	NoBrowser       bool
	InsecureStorage bool
	// Output is text or json (`bridge status`).
	Output string
}

// NewCmdLogin builds `bridge login`. runF replaces the work in tests.
func NewCmdLogin(f *Factory, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{F: f}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with your company identity (Okta device login)",
		Long: `Log in to a bridge gateway with the OAuth 2.0 device flow. The gateway tells
bridge which identity provider to use. The token is kept in the OS keychain,
or in a 0600 file when no keychain is available or --insecure-storage is given.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Gateway, "gateway", "", "the gateway's `URL`, such as https://mcp-gw.example.com (remembered; a bare host[:port] means https, or http on loopback)")
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "print the login URL instead of opening a browser")
	cmd.Flags().BoolVar(&opts.InsecureStorage, "insecure-storage", false, "keep tokens in a 0600 file instead of the OS keychain")
	return cmd
}

// resolveClient finds what every client command starts from: the client's
// home directory, its saved profile (nil when there is none) and the gateway
// to talk to.
func resolveClient(f *Factory, gatewayFlag string) (home string, prof *auth.Profile, gw string, err error) {
	if home, err = f.Home(); err != nil {
		return "", nil, "", err
	}
	if prof, err = loadProfile(home); err != nil {
		return "", nil, "", err
	}
	gw, err = resolveGateway(f, gatewayFlag, prof)
	return home, prof, gw, err
}

// loadProfile returns the saved profile, or nil when there is none.
func loadProfile(home string) (*auth.Profile, error) {
	p, err := auth.LoadProfile(home)
	if errors.Is(err, auth.ErrNoProfile) {
		return nil, nil
	}
	return p, err
}

// openStore opens the token store. Only login warns that tokens go to a
// file; the other commands would repeat it at every start.
func openStore(f *Factory, home string, insecure, warn bool) auth.Store {
	var w io.Writer = io.Discard
	if warn {
		w = f.IO.ErrOut
	}
	return auth.OpenStore(auth.StoreOptions{Home: home, Insecure: insecure, Keyring: f.Keyring, Warn: w})
}

// storeDescription says where a store keeps tokens.
func storeDescription(s auth.Store, home string) string {
	if _, ok := s.(*auth.FileStore); ok {
		return "file under " + auth.TokensDir(home)
	}
	return "OS keychain"
}

func loginRun(ctx context.Context, opts *LoginOptions) error {
	f := opts.F
	home, _, gw, err := resolveClient(f, opts.Gateway)
	if errors.Is(err, auth.ErrNotLoggedIn) {
		return usageError{errors.New("no gateway configured: pass --gateway URL")}
	}
	if err != nil {
		return err
	}
	hc := f.HTTPClient()
	bc, err := auth.FetchBridgeConfiguration(ctx, hc, gw)
	if err != nil {
		return fmt.Errorf("asking %s how to log in: %w", gw, err)
	}
	login := &auth.DeviceLogin{Config: *bc, HTTPClient: hc, Stderr: f.IO.ErrOut, Now: f.Now}
	if !opts.NoBrowser {
		login.OpenBrowser = f.OpenBrowser
	}
	tok, err := login.Run(ctx)
	if err != nil {
		return err
	}
	if err := openStore(f, home, opts.InsecureStorage, true).Save(gw, tok); err != nil {
		return fmt.Errorf("saving the token: %w", err)
	}
	if err := auth.SaveProfile(home, &auth.Profile{
		Gateway: gw, Issuer: bc.Issuer, ClientID: bc.ClientID, Audience: bc.Audience, Scopes: bc.Scopes,
		InsecureStorage: opts.InsecureStorage,
	}); err != nil {
		return fmt.Errorf("saving the profile: %w", err)
	}
	who, err := whoami(ctx, hc, gw, tok.AccessToken)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "Logged in to %s, but the gateway did not accept the token yet: %v\n", gw, err)
		return nil
	}
	fmt.Fprintf(f.IO.ErrOut, "Logged in to %s as %s%s.\n", gw, who.display(), who.groupsSuffix())
	return nil
}

// whoamiResponse is the gateway's GET /v1/whoami.
type whoamiResponse struct {
	Subject   string    `json:"subject"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Groups    []string  `json:"groups"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (w *whoamiResponse) display() string {
	if w.Email != "" {
		return w.Email
	}
	return w.Subject
}

func (w *whoamiResponse) groupsSuffix() string {
	if len(w.Groups) == 0 {
		return ""
	}
	return " (groups: " + strings.Join(w.Groups, ", ") + ")"
}

// whoami asks the gateway who the token belongs to; this proves both that
// the gateway is reachable and that it accepts the token.
func whoami(ctx context.Context, hc *http.Client, gw string, tok auth.Secret) (*whoamiResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/v1/whoami", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the gateway is unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the gateway answered HTTP %d", resp.StatusCode)
	}
	var w whoamiResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("the gateway sent an unreadable answer")
	}
	return &w, nil
}

// NewCmdLogout builds `bridge logout`.
func NewCmdLogout(f *Factory, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{F: f}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget the stored tokens for the gateway",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return logoutRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Gateway, "gateway", "", "the `URL` of the gateway to log out of (default: the saved one)")
	return cmd
}

func logoutRun(opts *LoginOptions) error {
	f := opts.F
	home, _, gw, err := resolveClient(f, opts.Gateway)
	if err != nil {
		return err
	}
	// Delete from both stores: the token may be in either.
	var errs []error
	for _, insecure := range []bool{false, true} {
		if err := openStore(f, home, insecure, false).Delete(gw); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 2 {
		return errors.Join(errs...)
	}
	fmt.Fprintf(f.IO.ErrOut, "Logged out of %s.\n", gw)
	return nil
}

// NewCmdStatus builds `bridge status`.
func NewCmdStatus(f *Factory, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{F: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show who you are logged in as, the token's expiry and whether the gateway answers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Gateway, "gateway", "", "the gateway's `URL` (default: the saved one); with BRIDGE_TOKEN, no login is needed")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "text or json")
	return cmd
}

func statusRun(ctx context.Context, opts *LoginOptions) error {
	f := opts.F
	home, prof, gw, err := resolveClient(f, opts.Gateway)
	if err != nil {
		return err
	}
	v, err := status(ctx, f, home, prof, gw)
	if opts.Output == "json" {
		if werr := writeJSONOut(f.IO.Out, v); werr != nil {
			return werr
		}
		return err
	}
	out := f.IO.Out
	fmt.Fprintf(out, "gateway:  %s\n", v.Gateway)
	switch {
	case v.Token == "":
		fmt.Fprintf(out, "token:    none\n")
		return err
	case v.TokenSource == auth.TokenEnv:
		fmt.Fprintf(out, "token:    %s (from %s)\n", v.Token, auth.TokenEnv)
	default:
		fmt.Fprintf(out, "token:    %s (%s)\n", v.Token, v.TokenSource)
	}
	if v.Expiry != nil {
		left := v.Expiry.Sub(f.Now()).Round(time.Second)
		state := "expires in " + left.String()
		if left <= 0 {
			state = "expired; it is refreshed on next use"
		}
		fmt.Fprintf(out, "expiry:   %s (%s)\n", v.Expiry.Local().Format(time.RFC3339), state)
	}
	if err != nil {
		fmt.Fprintf(out, "gateway:  %v\n", err)
		return err
	}
	fmt.Fprintf(out, "user:     %s%s\n", v.User, (&whoamiResponse{Groups: v.Groups}).groupsSuffix())
	fmt.Fprintf(out, "reachable: yes\n")
	return nil
}

// statusView is what `bridge status` reports; -o json prints it as is.
type statusView struct {
	Gateway string `json:"gateway"`
	// Token is masked (eyJh…****); TokenSource is BRIDGE_TOKEN or where
	// the login is stored.
	Token       string     `json:"token,omitempty"`
	TokenSource string     `json:"token_source,omitempty"`
	Expiry      *time.Time `json:"expiry,omitempty"`
	Reachable   bool       `json:"reachable"`
	User        string     `json:"user,omitempty"`
	Groups      []string   `json:"groups,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// status finds the token for gw and asks the gateway who it belongs to.
func status(ctx context.Context, f *Factory, home string, prof *auth.Profile, gw string) (*statusView, error) {
	v := &statusView{Gateway: gw}
	fail := func(err error) (*statusView, error) {
		v.Error = err.Error()
		return v, err
	}
	var tok auth.Secret
	if env := f.Getenv(auth.TokenEnv); env != "" {
		tok = auth.Secret(env)
		v.Token, v.TokenSource = auth.MaskToken(env), auth.TokenEnv
	} else {
		store := openStore(f, home, prof != nil && prof.InsecureStorage, false)
		t, err := store.Load(gw)
		if err != nil {
			return fail(fmt.Errorf("%w: run `bridge login`", auth.ErrNotLoggedIn))
		}
		tok = t.AccessToken
		v.Token, v.TokenSource = auth.MaskToken(tok.Reveal()), storeDescription(store, home)
		if !t.Expiry.IsZero() {
			e := t.Expiry
			v.Expiry = &e
		}
	}
	who, err := whoami(ctx, f.HTTPClient(), gw, tok)
	if err != nil {
		return fail(err)
	}
	v.Reachable, v.User, v.Groups = true, who.display(), who.Groups
	return v, nil
}

// tokenSourceFor returns where the gateway's bearer token comes from:
// BRIDGE_TOKEN when set, else the login stored for gw, refreshed as needed.
func tokenSourceFor(f *Factory, home string, prof *auth.Profile, gw string, hc *http.Client) auth.AccessTokenSource {
	if tok := f.Getenv(auth.TokenEnv); tok != "" {
		return auth.StaticSource(auth.Secret(tok))
	}
	return storeSource(f, home, prof, gw, hc)
}

// storeSource returns the refreshing token source over the stored login.
func storeSource(f *Factory, home string, prof *auth.Profile, gw string, hc *http.Client) *auth.Source {
	s := &auth.Source{Store: openStore(f, home, prof != nil && prof.InsecureStorage, false), Key: gw, HTTPClient: hc, Home: home, Now: f.Now}
	if prof != nil {
		s.Issuer, s.ClientID = prof.Issuer, prof.ClientID
	}
	return s
}
