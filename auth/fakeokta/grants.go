package fakeokta

import (
	"crypto/rand"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

type deviceState int

const (
	statePending deviceState = iota
	stateApproved
	stateDenied
	stateRedeemed
)

type deviceEntry struct {
	deviceCode string
	userCode   string
	scopes     []string
	expires    time.Time
	interval   time.Duration
	lastPoll   time.Time
	state      deviceState
	username   string
}

type refreshEntry struct {
	family   string
	username string
	scopes   []string
	expires  time.Time
	used     bool
}

// userCodeAlphabet has 32 symbols, so a random byte maps to it without
// bias, and leaves out look-alikes (0/O, 1/I).
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func normalizeUserCode(c string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(c), "-", ""))
}

func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// oauthError writes an RFC 6749 error response.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) checkClient(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return false
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return false
	}
	if r.PostForm.Get("client_id") != s.opts.ClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return false
	}
	return true
}

func (s *Server) handleDeviceAuthorize(w http.ResponseWriter, r *http.Request, issuer string) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !s.checkClient(w, r) {
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "The openid scope is required.")
		return
	}
	d := &deviceEntry{
		deviceCode: rand.Text(),
		userCode:   randomString(userCodeAlphabet, 8),
		scopes:     scopes,
		interval:   s.opts.PollInterval,
		state:      statePending,
	}
	s.mu.Lock()
	d.expires = s.opts.Now().Add(s.opts.DeviceCodeTTL)
	s.devices[d.deviceCode] = d
	s.byUser[d.userCode] = d
	s.stats.DeviceAuthorizations++
	s.mu.Unlock()

	verify := issuer + "/activate"
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               d.deviceCode,
		"user_code":                 formatUserCode(d.userCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(formatUserCode(d.userCode)),
		"expires_in":                int(s.opts.DeviceCodeTTL / time.Second),
		"interval":                  int(s.opts.PollInterval / time.Second),
	})
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, issuer string) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !s.checkClient(w, r) {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case deviceGrantType:
		s.deviceGrant(w, r, issuer)
	case "refresh_token":
		s.refreshGrant(w, r, issuer)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The grant type is not supported.")
	}
}

func (s *Server) deviceGrant(w http.ResponseWriter, r *http.Request, issuer string) {
	s.mu.Lock()
	now := s.opts.Now()
	d, ok := s.devices[r.PostForm.Get("device_code")]
	if !ok {
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The device code is invalid.")
		return
	}
	if !now.Before(d.expires) {
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "expired_token", "The device code has expired.")
		return
	}
	tooFast := !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < d.interval
	d.lastPoll = now
	if tooFast {
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "slow_down", "Polling too frequently.")
		return
	}
	if d.state == statePending && s.opts.AutoApproveOnPoll && s.opts.AutoApprove != "" {
		d.state, d.username = stateApproved, s.opts.AutoApprove
		s.opts.Logf("fakeokta: device login %s auto-approved as %s", d.userCode, d.username)
	}
	switch d.state {
	case statePending:
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "authorization_pending", "The device authorization is pending.")
		return
	case stateDenied:
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "access_denied", "The resource owner denied the request.")
		return
	case stateRedeemed:
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The device code was already used.")
		return
	}
	d.state = stateRedeemed
	s.stats.DeviceGrants++
	family := rand.Text()
	s.families[family] = false
	s.mu.Unlock()
	s.issue(w, issuer, d.username, d.scopes, family)
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, issuer string) {
	s.mu.Lock()
	now := s.opts.Now()
	rt := r.PostForm.Get("refresh_token")
	e, ok := s.refresh[rt]
	fail := func(desc string) {
		s.stats.RefreshFailures++
		s.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant", desc)
	}
	switch {
	case !ok:
		fail("The refresh token is invalid or expired.")
		return
	case s.families[e.family]:
		fail("The refresh token is invalid or expired.")
		return
	case e.used:
		// Okta: presenting a rotated refresh token revokes the whole family.
		s.families[e.family] = true
		s.stats.ReuseDetected++
		s.opts.Logf("fakeokta: refresh token reuse detected for %s; token family revoked", e.username)
		fail("The refresh token is invalid or expired.")
		return
	case !now.Before(e.expires):
		fail("The refresh token is invalid or expired.")
		return
	}
	e.used = true
	s.stats.RefreshGrants++
	s.mu.Unlock()
	s.issue(w, issuer, e.username, e.scopes, e.family)
}

// issue writes a token response for username, rotating in a new refresh
// token of family when offline_access was granted.
func (s *Server) issue(w http.ResponseWriter, issuer, username string, scopes []string, family string) {
	u := s.opts.Users[username]
	now := s.opts.Now()
	claims, err := json.Marshal(s.accessClaims(issuer, u, scopes, now))
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "encoding claims")
		return
	}
	at, err := s.sign("at+jwt", claims)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	resp := map[string]any{
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.AccessTokenTTL / time.Second),
		"access_token": at,
		"scope":        strings.Join(scopes, " "),
	}
	if slices.Contains(scopes, "openid") {
		idc, _ := json.Marshal(s.idClaims(issuer, u, now))
		if id, err := s.sign("JWT", idc); err == nil {
			resp["id_token"] = id
		}
	}
	if slices.Contains(scopes, "offline_access") {
		rt := rand.Text() + rand.Text()
		s.mu.Lock()
		s.refresh[rt] = &refreshEntry{
			family: family, username: username, scopes: scopes,
			expires: now.Add(s.opts.RefreshTokenTTL),
		}
		s.mu.Unlock()
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

var activatePage = template.Must(template.New("activate").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>bridge development sign-in</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto">
<h1>bridge development sign-in</h1>
{{if .Code}}<p>Code: <code>{{.Code}}</code></p>
<p>{{.Message}}</p>
{{else}}<form method="get"><label>Code <input name="user_code" autofocus></label> <button>Continue</button></form>
{{end}}</body></html>
`))

func (s *Server) handleActivate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	code := r.URL.Query().Get("user_code")
	var msg string
	if code != "" {
		s.mu.Lock()
		_, known := s.byUser[normalizeUserCode(code)]
		s.mu.Unlock()
		switch {
		case !known:
			msg = "This code is not valid."
		case s.opts.AutoApprove != "":
			if err := s.Approve(code, s.opts.AutoApprove); err != nil {
				msg = "This code can no longer be approved."
			} else {
				msg = "Signed in as " + s.opts.AutoApprove + ". You can close this window and return to the terminal."
			}
		default:
			msg = "Waiting for the sign-in to be approved."
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = activatePage.Execute(w, struct{ Code, Message string }{code, msg})
}
