package connect

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// The listener of `bridge connect --listen` acts as the developer at the
// gateway, so any process on the machine that can reach its port could do
// the same. Each launch therefore makes a random secret, which it prints in
// the URLs it shows (as Jupyter does), and refuses requests without it.
// An agent presents it in one of three ways:
//
//   - the header Authorization: Bearer <secret>;
//   - the query parameter ?token=<secret> on the URL (agents configured with
//     the printed URL send it on every request);
//   - the cookie bridge_connect_token, which the listener sets on a request
//     that had a valid query parameter, for browser-based clients.
//
// The legacy HTTP+SSE transport's message endpoint carries the parameter,
// so the agent's posts there carry it too. Secrets are compared in constant
// time and never logged.

// SecretParam and SecretCookie name where the secret may be presented.
const (
	SecretParam  = "token"
	SecretCookie = "bridge_connect_token"
)

// NewSecret returns a fresh random listener secret (256 bits, URL-safe).
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("bridge connect: making the listener secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// requireSecret refuses requests that do not present secret.
func requireSecret(secret string, next http.Handler) http.Handler {
	want := []byte(secret)
	matches := func(got string) bool { return got != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := bearer(r); ok && matches(tok) {
			next.ServeHTTP(w, r)
			return
		}
		if matches(r.URL.Query().Get(SecretParam)) {
			http.SetCookie(w, &http.Cookie{Name: SecretCookie, Value: secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(SecretCookie); err == nil && matches(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Bearer realm="bridge connect"`)
		w.WriteHeader(http.StatusUnauthorized)
		msg := "bridge connect: this listener needs the secret it printed when it started: use the URL it printed (ending in ?token=…), or send Authorization: Bearer <secret>"
		_, _ = w.Write(bridge.NewError(nil, bridge.CodeRefused, msg).Raw)
		_, _ = w.Write([]byte("\n"))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !equalFoldASCII(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
