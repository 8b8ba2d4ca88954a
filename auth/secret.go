package auth

import (
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// redacted is what a Secret prints in every formatting, logging and
// serialisation path.
const redacted = "[redacted]"

// Secret is a credential such as an access or refresh token. Every way of
// printing it (fmt verbs, slog, JSON, text marshalling) yields a redaction;
// only Reveal returns the value.
type Secret string

// Reveal returns the secret value. Call it only where the value is sent to
// its intended recipient (an Authorization header, a token store).
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String returns a redaction.
func (s Secret) String() string { return redacted }

// GoString returns a redaction, for %#v.
func (s Secret) GoString() string { return redacted }

// Format writes a redaction for every verb, so %v, %s, %q, %x, %+v and %#v
// never reveal the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer with a redaction.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes a redaction. Token stores use their own wire format.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes a redaction.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MaskToken shortens a token for display to a person, keeping only its
// first four characters: "eyJhbGciOi..." becomes "eyJh…****". Tokens too
// short to mask safely print as "****".
func MaskToken(s string) string {
	const keep = 4
	if utf8.RuneCountInString(s) < 3*keep {
		return "****"
	}
	r := []rune(s)
	return string(r[:keep]) + "…****"
}
