package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

type identityKey struct{}

// IdentityFrom returns the verified caller of a request's context.
func IdentityFrom(ctx context.Context) (*auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*auth.Identity)
	return id, ok
}

// identify binds sessions to the verified subject.
func identify(r *http.Request) (string, any) {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return "", nil
	}
	return id.Subject, id
}

// authenticate verifies the bearer token of every MCP request. Without a
// valid token the request goes no further: 401 with a WWW-Authenticate
// challenge pointing at the protected-resource metadata, or 503 when the
// identity provider cannot be reached to check it.
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metadata := g.publicURL(r) + "/.well-known/oauth-protected-resource" + r.URL.Path
		raw, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q`, metadata))
			writeRPCError(w, http.StatusUnauthorized, bridge.CodeRefused, "authentication required: run `bridge login`, or send an Okta access token as a Bearer token")
			return
		}
		id, err := g.verifier.Verify(r.Context(), raw)
		if err != nil {
			reason := publicReason(err)
			if errors.Is(err, auth.ErrVerifierUnavailable) {
				g.log.Error("token verification unavailable", "err", err)
				writeRPCError(w, http.StatusServiceUnavailable, bridge.CodeUnavailable, "the gateway cannot reach the identity provider to verify your token; try again shortly")
				return
			}
			g.log.Warn("token rejected", "reason", reason, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q, resource_metadata=%q`, reason, metadata))
			writeRPCError(w, http.StatusUnauthorized, bridge.CodeRefused, "invalid access token ("+reason+"): run `bridge login`")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// publicReason is the part of a verification error safe to show a client.
func publicReason(err error) string {
	msg := "rejected"
	var te *auth.TokenError
	if errors.As(err, &te) {
		msg = te.Reason
	}
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return strings.NewReplacer(`"`, `'`, "\n", " ").Replace(msg)
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
