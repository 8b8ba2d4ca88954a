package auth

import (
	"encoding/json"
	"fmt"
	"time"
)

// defaultHTTPTimeout bounds requests made with a nil *http.Client.
const defaultHTTPTimeout = 30 * time.Second

// Token is the result of a login or a refresh. Its secret fields redact
// themselves when printed or marshalled; stores persist the real values
// through a private wire format.
type Token struct {
	AccessToken  Secret    `json:"access_token"`
	RefreshToken Secret    `json:"refresh_token,omitempty"`
	IDToken      Secret    `json:"id_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// tokenWire is the persisted form of a Token, with the real secret values.
// It must never be logged.
type tokenWire struct {
	Version      int       `json:"v"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

const tokenWireVersion = 1

// encodeToken serialises t with its secret values, for a token store.
func encodeToken(t *Token) ([]byte, error) {
	return json.Marshal(tokenWire{
		Version:      tokenWireVersion,
		AccessToken:  t.AccessToken.Reveal(),
		RefreshToken: t.RefreshToken.Reveal(),
		IDToken:      t.IDToken.Reveal(),
		TokenType:    t.TokenType,
		Expiry:       t.Expiry,
	})
}

// decodeToken parses what encodeToken produced. Its errors never quote the
// input.
func decodeToken(b []byte) (*Token, error) {
	var w tokenWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("stored token is corrupt")
	}
	if w.Version != tokenWireVersion {
		return nil, fmt.Errorf("stored token has unknown format version %d", w.Version)
	}
	return &Token{
		AccessToken:  Secret(w.AccessToken),
		RefreshToken: Secret(w.RefreshToken),
		IDToken:      Secret(w.IDToken),
		TokenType:    w.TokenType,
		Expiry:       w.Expiry,
	}, nil
}
