package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// oauthError is an RFC 6749 error response from the token endpoint. Its
// text holds only the error code and a bounded description, never a body.
type oauthError struct {
	Status      int
	Code        string
	Description string
}

func (e *oauthError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("identity provider answered HTTP %d", e.Status)
	}
	if e.Description == "" {
		return "identity provider error: " + e.Code
	}
	return fmt.Sprintf("identity provider error: %s: %s", e.Code, e.Description)
}

// asOAuthError converts an oauth2.RetrieveError (whose text can include
// the response body) into an oauthError.
func asOAuthError(err error) (*oauthError, bool) {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe, true
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &oauthError{Status: status, Code: re.ErrorCode, Description: truncate(re.ErrorDescription, 200)}, true
	}
	return nil, false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tokenResponse is a successful token endpoint response.
type tokenResponse struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	RefreshToken string      `json:"refresh_token"`
	IDToken      string      `json:"id_token"`
	ExpiresIn    json.Number `json:"expires_in"`
}

// toToken converts r to a Token whose expiry is measured from now.
func (r *tokenResponse) toToken(now time.Time) (*Token, error) {
	if r.AccessToken == "" {
		return nil, errors.New("identity provider returned no access token")
	}
	t := &Token{
		AccessToken:  Secret(r.AccessToken),
		RefreshToken: Secret(r.RefreshToken),
		IDToken:      Secret(r.IDToken),
		TokenType:    r.TokenType,
	}
	if r.ExpiresIn != "" {
		secs, err := r.ExpiresIn.Int64()
		if err != nil || secs < 0 {
			return nil, errors.New("identity provider returned an invalid expires_in")
		}
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	}
	return t, nil
}

// postToken sends a form to the token endpoint and decodes the answer. An
// error response becomes an *oauthError.
func postToken(ctx context.Context, hc *http.Client, tokenURL string, form url.Values) (*tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := httpClient(hc).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxDiscoveryBody)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, &oauthError{Status: resp.StatusCode, Code: e.Code, Description: truncate(e.Description, 200)}
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, errors.New("identity provider returned an invalid token response")
	}
	return &tr, nil
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
