package connect

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLocalOnly: the loopback listener refuses requests whose Host or
// Origin is not itself, which defeats DNS rebinding from a web page.
func TestLocalOnly(t *testing.T) {
	h := localOnly("8765", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	cases := []struct {
		host, origin string
		want         int
	}{
		{"127.0.0.1:8765", "", http.StatusTeapot},
		{"localhost:8765", "http://localhost:8765", http.StatusTeapot},
		{"[::1]:8765", "http://[::1]:8765", http.StatusTeapot},
		{"evil.example.com:8765", "", http.StatusForbidden},
		{"127.0.0.1:9999", "", http.StatusForbidden},
		{"127.0.0.1", "", http.StatusForbidden},
		{"127.0.0.1:8765", "http://evil.example.com", http.StatusForbidden},
		{"127.0.0.1:8765", "http://127.0.0.1:9999", http.StatusForbidden},
		{"127.0.0.1:8765", "null", http.StatusForbidden},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Host %q Origin %q: %d, want %d", tc.host, tc.origin, w.Code, tc.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	cases := []struct {
		gw, want, err string
	}{
		{"https://gw.example.com", "https://gw.example.com/mcp/github", ""},
		{"https://gw.example.com/", "https://gw.example.com/mcp/github", ""},
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787/mcp/github", ""},
		{"http://gw.example.com", "", "plain http"},
		{"ftp://x", "", "invalid gateway URL"},
	}
	for _, tc := range cases {
		o := Options{Gateway: tc.gw, Server: "github"}
		got, err := o.Endpoint()
		if tc.err != "" {
			if err == nil || !contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.gw, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v", tc.gw, got, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
