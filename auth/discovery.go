package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Response size limits for documents fetched from the network.
const (
	maxConfigBody    = 64 << 10 // bridge-configuration
	maxDiscoveryBody = 1 << 20  // OIDC discovery, JWKS, token responses
)

// BridgeConfiguration is the body of the gateway's
// GET /.well-known/bridge-configuration: everything a client needs to log in.
type BridgeConfiguration struct {
	Issuer      string   `json:"issuer"`
	ClientID    string   `json:"client_id"`
	Audience    string   `json:"audience"`
	Scopes      []string `json:"scopes"`
	GroupsClaim string   `json:"groups_claim,omitempty"`
}

// BridgeConfigurationPath is where the gateway publishes its
// BridgeConfiguration.
const BridgeConfigurationPath = "/.well-known/bridge-configuration"

// DefaultScopes are requested when a configuration names none.
var defaultScopes = []string{"openid", "profile", "email", "offline_access"}

// DefaultScopes returns the scopes requested when a configuration names none.
func DefaultScopes() []string { return append([]string(nil), defaultScopes...) }

// Validate reports whether c is complete and its issuer is a URL a client
// may send credentials to (https, or http on a loopback host).
func (c *BridgeConfiguration) Validate() error {
	if c.Issuer == "" {
		return errors.New("bridge configuration has no issuer")
	}
	if err := checkSecureURL(c.Issuer); err != nil {
		return fmt.Errorf("bridge configuration issuer: %w", err)
	}
	if c.ClientID == "" {
		return errors.New("bridge configuration has no client_id")
	}
	return nil
}

// FetchBridgeConfiguration fetches and validates the gateway's
// BridgeConfiguration. gatewayURL must be https, or http on a loopback host.
func FetchBridgeConfiguration(ctx context.Context, hc *http.Client, gatewayURL string) (*BridgeConfiguration, error) {
	if err := checkSecureURL(gatewayURL); err != nil {
		return nil, fmt.Errorf("gateway URL: %w", err)
	}
	u := strings.TrimRight(gatewayURL, "/") + BridgeConfigurationPath
	var c BridgeConfiguration
	if err := getJSON(ctx, hc, u, maxConfigBody, &c); err != nil {
		return nil, fmt.Errorf("fetching the gateway's configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gateway %s: %w", gatewayURL, err)
	}
	return &c, nil
}

// providerMetadata is the part of an OIDC / RFC 8414 discovery document
// bridge uses.
type providerMetadata struct {
	Issuer                      string   `json:"issuer"`
	JWKSURI                     string   `json:"jwks_uri"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	SigningAlgs                 []string `json:"id_token_signing_alg_values_supported"`
}

// discoverProvider fetches <issuer>/.well-known/openid-configuration, which
// Okta serves for both org (https://x.okta.com) and custom
// (https://x.okta.com/oauth2/default) authorization servers, and checks that
// the document names the same issuer.
func discoverProvider(ctx context.Context, hc *http.Client, issuer string) (*providerMetadata, error) {
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	var m providerMetadata
	if err := getJSON(ctx, hc, u, maxDiscoveryBody, &m); err != nil {
		return nil, fmt.Errorf("discovering the identity provider: %w", err)
	}
	if strings.TrimRight(m.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return nil, fmt.Errorf("identity provider discovery names issuer %q, expected %q", m.Issuer, issuer)
	}
	return &m, nil
}

// getJSON GETs u and decodes a JSON body of at most limit bytes into v.
func getJSON(ctx context.Context, hc *http.Client, u string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := httpClient(hc).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, limit)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: unexpected status %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: invalid JSON: %w", u, err)
	}
	return nil
}

// readLimited reads at most limit bytes and fails if the body is longer.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return b, nil
}

// httpClient returns hc, or a client with a conservative timeout when hc is
// nil. It never returns http.DefaultClient, which has no timeout.
func httpClient(hc *http.Client) *http.Client {
	if hc != nil {
		return hc
	}
	return &http.Client{Timeout: defaultHTTPTimeout}
}

// checkSecureURL accepts https URLs, and http URLs whose host is loopback
// (development gateways and the built-in fake identity provider).
func checkSecureURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("URL %q must use https (plain http is allowed only on loopback)", raw)
	default:
		return fmt.Errorf("URL %q must use https", raw)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
