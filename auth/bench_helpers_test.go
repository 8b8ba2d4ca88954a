package auth

import jose "github.com/go-jose/go-jose/v4"

func parseSignedBaseline(raw string) (*jose.JSONWebSignature, error) {
	return jose.ParseSigned(raw, signingAlgs)
}
