package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFetchBridgeConfiguration(t *testing.T) {
	var body string
	status := http.StatusOK
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != BridgeConfigurationPath {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer ts.Close()
	ctx := context.Background()

	body = `{"issuer":"https://x.okta.com/oauth2/default","client_id":"0oa1","audience":"api://bridge","scopes":["openid","offline_access"],"groups_claim":"groups"}`
	c, err := FetchBridgeConfiguration(ctx, ts.Client(), ts.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://x.okta.com/oauth2/default" || c.ClientID != "0oa1" || c.Audience != "api://bridge" || len(c.Scopes) != 2 || c.GroupsClaim != "groups" {
		t.Fatalf("unexpected config %+v", c)
	}

	for _, tc := range []struct {
		name, gateway, body string
		status              int
		want                string
	}{
		{"too large", ts.URL, `{"issuer":"` + strings.Repeat("a", maxConfigBody) + `"}`, 200, "larger than"},
		{"not found", ts.URL, `{}`, 404, "unexpected status 404"},
		{"bad json", ts.URL, `<html>`, 200, "invalid JSON"},
		{"no client id", ts.URL, `{"issuer":"https://x.okta.com"}`, 200, "no client_id"},
		{"http issuer", ts.URL, `{"issuer":"http://x.okta.com","client_id":"a"}`, 200, "must use https"},
		{"plain http gateway", "http://gw.example.com", `{}`, 200, "must use https"},
		{"bad gateway url", "gw.example.com", `{}`, 200, "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, status = tc.body, tc.status
			_, err := FetchBridgeConfiguration(ctx, ts.Client(), tc.gateway)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
