package fakeokta

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func start(t *testing.T, mutate func(*Options)) (*Server, *httptest.Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := Options{
		ClientID: "cid", Audience: "api://bridge", Now: clk.Now,
		Users: map[string]User{"dev": {Subject: "00u-dev", Email: "dev@example.com", Groups: []string{"eng"}}},
	}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts, clk
}

func post(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func TestDerivedIssuerAndMetadata(t *testing.T) {
	s, ts, _ := start(t, nil)
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(ts.URL + DefaultPath + p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m["issuer"] != ts.URL+DefaultPath || m["device_authorization_endpoint"] != ts.URL+DefaultPath+"/v1/device/authorize" {
			t.Fatalf("%s: %v", p, m)
		}
	}
	if _, err := s.Mint("dev", MintOptions{}); err == nil {
		t.Fatal("Mint without an issuer succeeded")
	}
	// With an explicit issuer, endpoints move under its path.
	if err := s.SetIssuer(ts.URL + "/oauth2/custom"); err != nil {
		t.Fatal(err)
	}
	resp, _ := http.Get(ts.URL + DefaultPath + "/v1/keys")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("old path still served: %d", resp.StatusCode)
	}
}

func TestDeviceFlowAndRotation(t *testing.T) {
	s, ts, clk := start(t, func(o *Options) { o.AutoApprove = "dev" })
	base := ts.URL + DefaultPath
	if code, m := post(t, base+"/v1/device/authorize", url.Values{"client_id": {"nope"}, "scope": {"openid"}}); code != 401 || m["error"] != "invalid_client" {
		t.Fatalf("wrong client: %d %v", code, m)
	}
	_, da := post(t, base+"/v1/device/authorize", url.Values{"client_id": {"cid"}, "scope": {"openid offline_access"}})
	form := url.Values{"client_id": {"cid"}, "grant_type": {deviceGrantType}, "device_code": {da["device_code"].(string)}}
	if _, m := post(t, base+"/v1/token", form); m["error"] != "authorization_pending" {
		t.Fatalf("first poll: %v", m)
	}
	if _, m := post(t, base+"/v1/token", form); m["error"] != "slow_down" {
		t.Fatalf("immediate second poll: %v", m)
	}

	// The activate page escapes what it echoes and approves as AutoApprove.
	resp, err := http.Get(base + "/activate?user_code=" + url.QueryEscape("<script>"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "<script>") {
		t.Fatal("activate page echoes unescaped input")
	}
	resp, err = http.Get(da["verification_uri_complete"].(string))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Signed in as dev") {
		t.Fatalf("activate page: %s", body)
	}

	clk.Advance(5 * time.Second)
	_, tok := post(t, base+"/v1/token", form)
	if tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("token response: %v", tok)
	}
	clk.Advance(5 * time.Second)
	if _, m := post(t, base+"/v1/token", form); m["error"] != "invalid_grant" {
		t.Fatalf("redeemed device code: %v", m)
	}

	refresh := func(rt any) map[string]any {
		_, m := post(t, base+"/v1/token", url.Values{"client_id": {"cid"}, "grant_type": {"refresh_token"}, "refresh_token": {rt.(string)}})
		return m
	}
	r1 := refresh(tok["refresh_token"])
	if r1["refresh_token"] == nil || r1["refresh_token"] == tok["refresh_token"] {
		t.Fatalf("refresh did not rotate: %v", r1["error"])
	}
	if m := refresh(tok["refresh_token"]); m["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", m)
	}
	if m := refresh(r1["refresh_token"]); m["error"] != "invalid_grant" {
		t.Fatalf("family not revoked after reuse: %v", m)
	}
	if st := s.Stats(); st.RefreshGrants != 1 || st.RefreshFailures != 2 || st.ReuseDetected != 1 || st.DeviceGrants != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestKeyRotation(t *testing.T) {
	s, ts, _ := start(t, nil)
	_ = s.SetIssuer(ts.URL + DefaultPath)
	keys := func() int {
		resp, err := http.Get(ts.URL + DefaultPath + "/v1/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct{ Keys []map[string]any }
		_ = json.NewDecoder(resp.Body).Decode(&set)
		for _, k := range set.Keys {
			if k["d"] != nil || k["p"] != nil {
				t.Fatal("JWKS exposes a private key")
			}
		}
		return len(set.Keys)
	}
	old := s.CurrentKeyID()
	if err := s.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	if s.CurrentKeyID() == old || keys() != 2 {
		t.Fatal("rotation did not add a key")
	}
	s.DropOldKeys()
	if keys() != 1 {
		t.Fatal("DropOldKeys kept old keys")
	}
	if s.Stats().JWKSFetches != 2 {
		t.Fatalf("JWKS fetches %d", s.Stats().JWKSFetches)
	}
}

func TestNewValidation(t *testing.T) {
	for _, o := range []Options{
		{Audience: "a"},
		{ClientID: "c"},
		{ClientID: "c", Audience: "a", AutoApprove: "ghost"},
		{ClientID: "c", Audience: "a", Issuer: "not a url"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
