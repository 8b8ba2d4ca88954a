package connect

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequireSecret: the listener serves only requests that present this
// launch's secret, as a bearer token, the query parameter or the cookie.
func TestRequireSecret(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSecret()
	if len(secret) < 40 || secret == other {
		t.Fatalf("secrets %q and %q are not fresh 256-bit values", secret, other)
	}
	h := requireSecret(secret, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	cases := []struct {
		name, auth, query, cookie string
		want                      int
		setsCookie                bool
	}{
		{name: "nothing", want: http.StatusUnauthorized},
		{name: "bearer", auth: "Bearer " + secret, want: http.StatusTeapot},
		{name: "bearer any case", auth: "bearer " + secret, want: http.StatusTeapot},
		{name: "wrong bearer", auth: "Bearer " + other, want: http.StatusUnauthorized},
		{name: "prefix of the secret", auth: "Bearer " + secret[:len(secret)-1], want: http.StatusUnauthorized},
		{name: "basic", auth: "Basic " + secret, want: http.StatusUnauthorized},
		{name: "query", query: secret, want: http.StatusTeapot, setsCookie: true},
		{name: "wrong query", query: other, want: http.StatusUnauthorized},
		{name: "cookie", cookie: secret, want: http.StatusTeapot},
		{name: "wrong cookie", cookie: other, want: http.StatusUnauthorized},
		{name: "wrong bearer, right query", auth: "Bearer " + other, query: secret, want: http.StatusTeapot, setsCookie: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := "/mcp"
			if tc.query != "" {
				target += "?" + SecretParam + "=" + tc.query
			}
			r := httptest.NewRequest(http.MethodPost, target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: SecretCookie, Value: tc.cookie})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if got := strings.Contains(w.Header().Get("Set-Cookie"), SecretCookie+"="+secret); got != tc.setsCookie {
				t.Errorf("Set-Cookie %q", w.Header().Get("Set-Cookie"))
			}
			if c := w.Header().Get("Set-Cookie"); c != "" && (!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict")) {
				t.Errorf("cookie %q is not HttpOnly and SameSite=Strict", c)
			}
			if w.Code == http.StatusUnauthorized {
				body := w.Body.String()
				if !strings.Contains(body, `"code":-32001`) || !strings.Contains(body, "?token=") || strings.Contains(body, secret) {
					t.Errorf("refusal body %s", body)
				}
			}
		})
	}
}

// TestListenHandlerNeedsSecret: the whole listener, the legacy transport's
// message endpoint included, is behind the secret, and the endpoint the
// SSE stream names carries it, so an agent's posts there are accepted.
func TestListenHandlerNeedsSecret(t *testing.T) {
	secret, _ := NewSecret()
	if _, _, err := ListenHandler(Options{Gateway: "https://gw.example.com", Server: "demo"}, "8765", "short"); err == nil {
		t.Error("a short secret was accepted")
	}
	h, closeAll, err := ListenHandler(Options{Gateway: "https://gw.example.com", Server: "demo"}, "8765", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	for _, path := range []string{"/mcp", "/sse", "/message?sessionId=x"} {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
		r.Host = "127.0.0.1:8765"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s without the secret: %d", path, w.Code)
		}
	}
}
