package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/install"
	"github.com/seed-3f9f6f16/bridge/bridge/settings"
)

// DoctorOptions are the flags and dependencies of `bridge doctor`.
type DoctorOptions struct {
	F       *Factory
	Gateway string
	// ManagedPath is the machine-wide managed configuration file.
	ManagedPath string
	// BuiltIn are the defaults baked into the binary.
	BuiltIn settings.Values
	// Installer finds the agents' configuration files; nil means this
	// machine's.
	Installer *install.Installer
	// Output is text or json.
	Output string
}

// NewCmdDoctor builds `bridge doctor`.
func NewCmdDoctor(f *Factory, runF func(context.Context, *DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{F: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the set-up and say how to fix what is wrong",
		Long: `Check the configuration, the keychain, the login and its expiry, that the
gateway answers over trusted TLS, that this machine's clock agrees with the
gateway's, which servers the gateway offers you, and the agents' entries that
run bridge. Each failed check comes with a fix. The exit status is 1 if any
check failed; warnings do not fail.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			opts.ManagedPath = managedConfigPath(f)
			opts.BuiltIn = builtInSettings()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Gateway, "gateway", "", "check the gateway at this `URL` instead of the configured one")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "text or json")
	return cmd
}

// Doctor thresholds.
const (
	// maxClockSkew is the gateway's default identity.clock_skew: beyond
	// it, the gateway rejects fresh tokens as not yet valid or expired.
	maxClockSkew = 60 * time.Second
	// certWarning is how long before its expiry a gateway certificate is
	// reported.
	certWarning = 14 * 24 * time.Hour
	// doctorTimeout bounds each network check.
	doctorTimeout = 10 * time.Second
)

type checkStatus int

const (
	checkOK checkStatus = iota
	checkWarn
	checkFail
	checkSkip
)

func (s checkStatus) String() string {
	return [...]string{"ok", "warn", "FAIL", "skip"}[s]
}

// check is one line of the checklist.
type check struct {
	name   string
	status checkStatus
	detail []string // the first line, then continuation lines
	fixes  []string
}

// doctor runs the checks in order; later checks use what earlier ones
// learned and are skipped when what they need is missing.
type doctor struct {
	opts   *DoctorOptions
	f      *Factory
	hc     *http.Client
	checks []check

	home       string
	prof       *auth.Profile
	gw         string
	store      auth.Store
	token      *auth.Token // the stored token, when not BRIDGE_TOKEN
	loggedIn   bool
	reachable  bool
	servers    []string
	knowServer bool // servers is the gateway's answer
}

func (d *doctor) add(name string, st checkStatus, fix string, detail ...string) {
	c := check{name: name, status: st, detail: detail}
	if fix != "" {
		c.fixes = []string{fix}
	}
	d.checks = append(d.checks, c)
}

// errDoctor reports failed checks; the checklist says which.
type errDoctor struct{ failed int }

func (e errDoctor) Error() string {
	if e.failed == 1 {
		return "doctor: 1 check failed"
	}
	return fmt.Sprintf("doctor: %d checks failed", e.failed)
}

func doctorRun(ctx context.Context, opts *DoctorOptions) error {
	d := &doctor{opts: opts, f: opts.F, hc: opts.F.HTTPClient()}
	d.checkConfig()
	d.checkKeychain()
	d.checkLogin()
	d.checkGateway(ctx)
	d.checkIdentity(ctx)
	d.checkClients(opts)

	if opts.Output == "json" {
		return d.writeJSON()
	}
	failed := 0
	out := d.f.IO.Out
	width := 0
	for _, c := range d.checks {
		width = max(width, len(c.name))
	}
	pad := strings.Repeat(" ", 6+width+2)
	for _, c := range d.checks {
		fmt.Fprintf(out, "%-4s  %-*s  %s\n", c.status, width, c.name, c.detail[0])
		for _, l := range c.detail[1:] {
			fmt.Fprintf(out, "%s%s\n", pad, l)
		}
		if c.status == checkFail || c.status == checkWarn {
			for _, fix := range c.fixes {
				fmt.Fprintf(out, "%sfix: %s\n", pad, fix)
			}
		}
		if c.status == checkFail {
			failed++
		}
	}
	if failed > 0 {
		return errDoctor{failed}
	}
	fmt.Fprintln(out, "Everything looks fine.")
	return nil
}

func (d *doctor) checkConfig() {
	const name = "configuration"
	home, err := d.f.Home()
	if err != nil {
		d.add(name, checkFail, "set "+auth.HomeEnv+" to a writable directory", err.Error())
		return
	}
	d.home = home
	if d.prof, err = loadProfile(home); err != nil {
		d.add(name, checkFail, "repair or delete "+auth.ProfilePath(home)+", then run `bridge login`", err.Error())
		return
	}
	s, err := resolveSettings(d.opts.ManagedPath, d.opts.BuiltIn, home, d.prof, settings.Values{Gateway: d.opts.Gateway})
	if err != nil {
		d.add(name, checkFail, "ask your administrator to fix the managed configuration", err.Error())
		return
	}
	g := s.Get(settings.Gateway)
	if g.Value == "" {
		d.add(name, checkFail, "run `bridge login --gateway URL` with your company's gateway URL", "no gateway configured")
		return
	}
	if err := checkGatewayURL(g.Value); err != nil {
		d.add(name, checkFail, "run `bridge login --gateway https://…` with the right URL", err.Error())
		return
	}
	d.gw = g.Value
	from := g.Source
	if g.Ignored != "" {
		from += "; " + g.Ignored + ", ignored"
	}
	d.add(name, checkOK, "", fmt.Sprintf("gateway %s, from %s", g.Value, from))
}

// checkGatewayURL accepts https, and http only on loopback.
func checkGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the gateway URL %q is not a URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("the gateway URL %s must use https", raw)
}

func (d *doctor) checkKeychain() {
	const name = "keychain"
	if d.home == "" {
		d.add(name, checkSkip, "", "needs the configuration")
		return
	}
	file := auth.TokensDir(d.home)
	ks := &auth.KeyringStore{Keyring: d.f.Keyring}
	probe := ks.Probe()
	switch {
	case d.prof != nil && d.prof.InsecureStorage:
		d.store = &auth.FileStore{Dir: file}
		d.add(name, checkOK, "", "not used: tokens are in a 0600 file under "+file+" (--insecure-storage)")
	case probe != nil:
		d.store = &auth.FileStore{Dir: file}
		d.add(name, checkWarn,
			"unlock the keychain, or on Linux start a Secret Service such as gnome-keyring; then run `bridge login` again",
			"the system keychain does not answer: "+probe.Error(),
			"tokens are kept in a 0600 file under "+file+" instead")
	default:
		d.store = ks
		d.add(name, checkOK, "", "the system keychain answers")
	}
}

func (d *doctor) checkLogin() {
	const name = "login"
	if env := d.f.Getenv(auth.TokenEnv); env != "" {
		d.loggedIn = true
		d.add(name, checkOK, "", fmt.Sprintf("using %s from %s (never refreshed)", auth.MaskToken(env), auth.TokenEnv))
		return
	}
	if d.gw == "" || d.store == nil {
		d.add(name, checkSkip, "", "needs a gateway")
		return
	}
	tok, err := d.store.Load(d.gw)
	if errors.Is(err, auth.ErrNotLoggedIn) {
		d.add(name, checkFail, "run `bridge login`", "not logged in to "+d.gw)
		return
	}
	if err != nil {
		d.add(name, checkFail, "run `bridge logout`, then `bridge login`", "the stored token cannot be read: "+err.Error())
		return
	}
	d.token = tok
	now := d.f.Now()
	switch {
	case tok.Expiry.IsZero():
		d.loggedIn = true
		d.add(name, checkOK, "", "logged in; the access token does not say when it expires")
	case tok.Expiry.After(now):
		d.loggedIn = true
		d.add(name, checkOK, "", fmt.Sprintf("logged in; the access token expires in %s (%s)", roundDuration(tok.Expiry.Sub(now)), tok.Expiry.UTC().Format(time.RFC3339)))
	case !tok.RefreshToken.IsZero():
		d.loggedIn = true
		d.add(name, checkOK, "", fmt.Sprintf("logged in; the access token expired %s ago and is refreshed on next use", roundDuration(now.Sub(tok.Expiry))))
	default:
		d.add(name, checkFail, "run `bridge login`", fmt.Sprintf("the login expired %s ago and cannot be refreshed", roundDuration(now.Sub(tok.Expiry))))
	}
}

// roundDuration prints a duration to the second, or the minute past an hour.
func roundDuration(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func (d *doctor) checkGateway(ctx context.Context) {
	const name, clock = "gateway", "clock"
	if d.gw == "" {
		d.add(name, checkSkip, "", "needs a gateway")
		d.add(clock, checkSkip, "", "needs the gateway")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	resp, body, err := d.get(ctx, d.gw+auth.BridgeConfigurationPath, "")
	if err != nil {
		d.add(name, checkFail, gatewayFix(err), describeNetError(d.gw, err))
		d.add(clock, checkSkip, "", "needs the gateway")
		return
	}
	var bc auth.BridgeConfiguration
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &bc) != nil || bc.Validate() != nil {
		d.add(name, checkFail, "check the gateway URL; if it is right, tell your administrator",
			fmt.Sprintf("%s does not look like a bridge gateway (GET %s: HTTP %d)", d.gw, auth.BridgeConfigurationPath, resp.StatusCode))
		d.add(clock, checkSkip, "", "needs the gateway")
		return
	}
	d.reachable = true
	d.checkTLS(name, resp)
	d.checkClock(clock, resp)
}

func (d *doctor) checkTLS(name string, resp *http.Response) {
	if resp.TLS == nil {
		d.add(name, checkOK, "", "reachable over plain HTTP (loopback only)")
		return
	}
	detail := "reachable over " + tls.VersionName(resp.TLS.Version)
	if len(resp.TLS.PeerCertificates) == 0 {
		d.add(name, checkOK, "", detail)
		return
	}
	leaf := resp.TLS.PeerCertificates[0]
	detail += fmt.Sprintf(", certificate valid until %s", leaf.NotAfter.UTC().Format("2006-01-02"))
	if left := leaf.NotAfter.Sub(d.f.Now()); left < certWarning {
		d.add(name, checkWarn, "tell your administrator to renew the gateway's certificate",
			detail, fmt.Sprintf("the certificate expires in %s", roundDuration(left)))
		return
	}
	d.add(name, checkOK, "", detail)
}

func (d *doctor) checkClock(name string, resp *http.Response) {
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		d.add(name, checkSkip, "", "the gateway sent no Date header")
		return
	}
	skew := d.f.Now().Sub(date).Round(time.Second)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	if abs > maxClockSkew {
		d.add(name, checkFail, "turn on automatic time synchronisation (timedatectl set-ntp true; or Date & Time settings)",
			fmt.Sprintf("this machine's clock is %s %s the gateway's; tokens will be rejected", abs, dir))
		return
	}
	if abs <= 2*time.Second {
		d.add(name, checkOK, "", "agrees with the gateway's")
		return
	}
	d.add(name, checkOK, "", fmt.Sprintf("%s %s the gateway's (tolerated up to %s)", abs, dir, maxClockSkew))
}

// whoamiServers is the gateway's GET /v1/whoami, with the servers the
// user may use.
type whoamiServers struct {
	whoamiResponse
	Servers []string `json:"servers"`
}

func (d *doctor) checkIdentity(ctx context.Context) {
	const name, srv = "identity", "servers"
	if !d.reachable || !d.loggedIn {
		need := "needs a login"
		if !d.reachable {
			need = "needs the gateway"
		}
		d.add(name, checkSkip, "", need)
		d.add(srv, checkSkip, "", need)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	fromEnv := d.f.Getenv(auth.TokenEnv)
	var tok auth.Secret
	if fromEnv != "" {
		tok = auth.Secret(fromEnv)
	} else {
		src := &auth.Source{Store: d.store, Key: d.gw, HTTPClient: d.hc, Home: d.home, Now: d.f.Now}
		if d.prof != nil {
			src.Issuer, src.ClientID = d.prof.Issuer, d.prof.ClientID
		}
		var err error
		if tok, err = src.Token(ctx); err != nil {
			d.add(name, checkFail, "run `bridge login`", "the token cannot be refreshed: "+err.Error())
			d.add(srv, checkSkip, "", "needs a valid token")
			return
		}
	}
	relogin := "run `bridge login`"
	if fromEnv != "" {
		relogin = "put a fresh access token in " + auth.TokenEnv
	}
	resp, body, err := d.get(ctx, d.gw+"/v1/whoami", tok.Reveal())
	var who whoamiServers
	switch {
	case err != nil:
		d.add(name, checkFail, gatewayFix(err), describeNetError(d.gw, err))
	case resp.StatusCode == http.StatusUnauthorized:
		d.add(name, checkFail, relogin, "the gateway rejected the token (HTTP 401)"+reason(body))
	case resp.StatusCode == http.StatusServiceUnavailable:
		d.add(name, checkFail, "try again later; if it persists, tell your administrator", "the gateway cannot verify tokens right now (HTTP 503)")
	case resp.StatusCode != http.StatusOK:
		d.add(name, checkFail, "tell your administrator", fmt.Sprintf("GET /v1/whoami answered HTTP %d", resp.StatusCode))
	case json.Unmarshal(body, &who) != nil:
		d.add(name, checkFail, "tell your administrator", "GET /v1/whoami sent an unreadable answer")
	default:
		detail := who.display() + who.groupsSuffix()
		if !who.ExpiresAt.IsZero() {
			detail += fmt.Sprintf("; the token is valid for %s", roundDuration(who.ExpiresAt.Sub(d.f.Now())))
		}
		d.add(name, checkOK, "", detail)
		d.servers, d.knowServer = who.Servers, true
		if len(who.Servers) == 0 {
			d.add(srv, checkWarn, "ask your administrator for access", "the gateway offers you no servers")
		} else {
			d.add(srv, checkOK, "", strings.Join(who.Servers, ", "))
		}
		return
	}
	d.add(srv, checkSkip, "", "needs a valid token")
}

// reason returns ": <short reason>" from a 401 body, when it has one that
// is short and printable.
func reason(body []byte) string {
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		Message          string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	for _, s := range []string{e.ErrorDescription, e.Message, e.Error} {
		if s != "" && len(s) <= 200 && !strings.ContainsAny(s, "\r\n") {
			return ": " + s
		}
	}
	return ""
}

func (d *doctor) checkClients(opts *DoctorOptions) {
	const name = "agents"
	in := opts.Installer
	if in == nil {
		built, err := (&InstallOptions{F: d.f}).installer()
		if err != nil {
			d.add(name, checkSkip, "", "cannot find the agents' files: "+err.Error())
			return
		}
		in = built
	}
	var ok, bad, fixes []string
	fix := func(s string) {
		if !slices.Contains(fixes, s) {
			fixes = append(fixes, s)
		}
	}
	for _, l := range in.List() {
		label := l.Target.Client.Name
		if l.Target.Scope == "project" {
			label += " (project)"
		}
		if l.Err != nil {
			bad = append(bad, label+": "+l.Err.Error())
			fix("repair the JSON in " + l.Target.Path)
			continue
		}
		for _, s := range l.Bridge {
			server := s.BridgeServer()
			switch {
			case !isExecutable(s.Command):
				bad = append(bad, fmt.Sprintf("%s: %q runs %s, which is missing or not executable", label, s.Name, s.Command))
				fix(fmt.Sprintf("run `bridge install %s %s --force%s` to point it at this bridge", l.Target.Client.Name, s.Name, projectFlag(l)))
			case d.knowServer && !slices.Contains(d.servers, server):
				bad = append(bad, fmt.Sprintf("%s: %q connects to %q, which the gateway does not offer you", label, s.Name, server))
				fix(fmt.Sprintf("run `bridge uninstall %s %s%s`, or ask your administrator for access", l.Target.Client.Name, s.Name, projectFlag(l)))
			default:
				ok = append(ok, label+": "+s.Name)
			}
		}
	}
	switch {
	case len(bad) > 0:
		d.checks = append(d.checks, check{name: name, status: checkFail, detail: append(bad, ok...), fixes: fixes})
	case len(ok) == 0:
		d.add(name, checkWarn, "run `bridge install <client> <server>`, for example `bridge install claude-desktop "+firstOr(d.servers, "<server>")+"`", "no agent runs bridge yet")
	default:
		d.add(name, checkOK, "", ok...)
	}
}

func projectFlag(l install.Listing) string {
	if l.Target.Scope == "project" {
		return " --project"
	}
	return ""
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// isExecutable reports whether path is a regular file that can be run.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return strings.HasSuffix(strings.ToLower(path), ".exe") || fi.Mode().Perm()&0o111 != 0
}

// get performs a GET with an optional bearer token and reads at most
// 64 KiB of the body.
func (d *doctor) get(ctx context.Context, u, bearer string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// describeNetError says why the gateway could not be reached, without
// the Go error chain's noise.
func describeNetError(gw string, err error) string {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &ua), errors.As(err, &cve) && errors.As(cve.Err, &ua):
		return "the gateway's TLS certificate is signed by an authority this machine does not trust"
	case errors.As(err, &he):
		return "the gateway's TLS certificate is not valid for " + he.Host
	case errors.As(err, &ci):
		return "the gateway's TLS certificate is invalid: " + ci.Error()
	case errors.As(err, &cve):
		return "the gateway's TLS certificate cannot be verified: " + cve.Err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return gw + " did not answer within " + doctorTimeout.String()
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name
	case errors.As(err, &op) && op.Op == "dial":
		return gw + " is unreachable (" + unwrapAll(op.Err).Error() + ")"
	}
	return gw + " is unreachable: " + unwrapAll(err).Error()
}

func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// gatewayFix is the advice for a network failure.
func gatewayFix(err error) string {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return "if your company inspects TLS, install its root certificate in the system store (or set SSL_CERT_FILE); otherwise tell your administrator"
	}
	return "check the gateway URL and your network or VPN; `bridge login --gateway URL` changes the URL"
}
