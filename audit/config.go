package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Values of Config.OnFailure.
const (
	OnFailureDeny  = "deny"
	OnFailureAllow = "allow"
)

// Config is the `audit:` section of the gateway configuration:
//
//	audit:
//	  on_failure: deny            # deny (default) | allow
//	  retention: 2160h            # 0 or absent: keep forever; else at least 1h
//	  signing_key_file: /etc/bridge/audit-ed25519.pem   # optional, PEM PKCS #8
//	  auditors: [security-auditors]                     # groups that may read the log
type Config struct {
	// OnFailure says what happens to a request whose record cannot be
	// written: deny (the default: refuse it) or allow (an explicit opt-out).
	OnFailure string `yaml:"on_failure"`
	// Retention is how long records are kept; 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
	// SigningKeyFile is a PEM PKCS #8 Ed25519 private key; when set, the chain
	// head is signed periodically and at shutdown.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Auditors are the groups whose members may read the log over the API.
	Auditors []string `yaml:"auditors"`
}

// FieldError is a configuration error at a field path such as
// "audit.retention".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// MinRetention is the shortest retention Validate accepts.
const MinRetention = time.Hour

// Validate checks c and returns every problem as a *FieldError joined with
// errors.Join, with paths under "audit.". It does not read the key file; see
// LoadSigner.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: "audit." + path, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.OnFailure {
	case "", OnFailureDeny, OnFailureAllow:
	default:
		add("on_failure", "must be %q or %q, not %q", OnFailureDeny, OnFailureAllow, c.OnFailure)
	}
	if c.Retention < 0 {
		add("retention", "must not be negative")
	} else if c.Retention > 0 && c.Retention < MinRetention {
		add("retention", "must be 0 (keep forever) or at least %s, not %s", MinRetention, c.Retention)
	}
	if c.SigningKeyFile != "" && strings.TrimSpace(c.SigningKeyFile) != c.SigningKeyFile {
		add("signing_key_file", "has leading or trailing spaces")
	}
	seen := map[string]bool{}
	for i, g := range c.Auditors {
		switch {
		case strings.TrimSpace(g) == "":
			add(fmt.Sprintf("auditors[%d]", i), "must not be empty")
		case seen[g]:
			add(fmt.Sprintf("auditors[%d]", i), "duplicate group %q", g)
		}
		seen[g] = true
	}
	return errors.Join(errs...)
}

// FailOpen reports whether requests proceed when their record cannot be
// written (on_failure: allow). The default is to refuse them.
func (c *Config) FailOpen() bool { return c.OnFailure == OnFailureAllow }

// IsAuditor reports whether any of groups is an auditor group.
func (c *Config) IsAuditor(groups []string) bool {
	for _, g := range groups {
		for _, a := range c.Auditors {
			if g == a {
				return true
			}
		}
	}
	return false
}

// LoadSigner reads the signing key named by SigningKeyFile; it returns nil
// and no error when none is configured.
func (c *Config) LoadSigner() (ed25519.PrivateKey, error) {
	if c.SigningKeyFile == "" {
		return nil, nil
	}
	k, err := LoadPrivateKeyFile(c.SigningKeyFile)
	if err != nil {
		return nil, &FieldError{Path: "audit.signing_key_file", Msg: err.Error()}
	}
	return k, nil
}
