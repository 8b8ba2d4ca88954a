package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
)

// KeyedDigestPrefix starts every keyed argument digest, so that a reader
// (and a store migration) tells it from an unkeyed SHA-256 at a glance.
const KeyedDigestPrefix = "hmac-sha256:"

// MinDigestKeyLen is the shortest key a Digester accepts, in bytes.
const MinDigestKeyLen = 32

// Digester computes keyed argument digests: HMAC-SHA256, under a
// per-installation secret, of the arguments' canonical JSON. A plain hash
// of low-entropy arguments ({"approve":true}, a short account number) can
// be recovered by hashing guesses; a keyed one cannot without the key,
// which never leaves the gateway's store (as Vault salts its audit hashes).
// Approval records, audit records and webhooks carry only keyed digests.
type Digester struct {
	key []byte
}

// NewDigester returns a Digester over key, which must be at least
// MinDigestKeyLen random bytes.
func NewDigester(key []byte) (*Digester, error) {
	if len(key) < MinDigestKeyLen {
		return nil, errors.New("argument digest key: too short")
	}
	return &Digester{key: append([]byte(nil), key...)}, nil
}

// Args returns the keyed digest of CanonicalJSON(raw): "hmac-sha256:" and
// 64 lowercase hex digits. Arguments that cannot be canonicalized get the
// keyed digest of their raw bytes prefixed with "invalid:", so they never
// match a valid call.
func (d *Digester) Args(raw []byte) string {
	c, err := CanonicalJSON(raw)
	if err != nil {
		return "invalid:" + KeyedDigestPrefix + d.sum(raw)
	}
	return KeyedDigestPrefix + d.sum(c)
}

// Canonical returns the keyed digest of bytes already in canonical form.
func (d *Digester) Canonical(canonical []byte) string {
	return KeyedDigestPrefix + d.sum(canonical)
}

func (d *Digester) sum(b []byte) string {
	m := hmac.New(sha256.New, d.key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// String never prints the key.
func (d *Digester) String() string { return "policy.Digester{key: redacted}" }

// LogValue never logs the key.
func (d *Digester) LogValue() slog.Value { return slog.StringValue(d.String()) }

// IsKeyedDigest reports whether digest was made by a Digester (possibly of
// invalid arguments), as opposed to the unkeyed ArgsDigest of old stores.
func IsKeyedDigest(digest string) bool {
	return strings.HasPrefix(strings.TrimPrefix(digest, "invalid:"), KeyedDigestPrefix)
}
