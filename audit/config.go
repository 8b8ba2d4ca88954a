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
//	  durability: group           # group (default): fdatasync per group commit | os: written to the OS only
//	  retention: 2160h            # 0 or absent: keep forever; else at least 1h
//	  signing_key_file: /etc/bridge/audit-ed25519.pem   # required: `bridge audit keygen` makes one
//	  sign_every: 1000                                  # records between stored signed heads
//	  sign_interval: 1m                                 # and at least this often, even idle
//	  witness:                                          # at least one, outside the data file
//	    file: /var/log/bridge/audit-heads.jsonl         # every signed head appended here
//	    webhook: true                                   # and posted to the notify webhooks
//	  auditors: [security-auditors]                     # groups that may read the log
type Config struct {
	// OnFailure says what happens to a request whose record cannot be
	// written: deny (the default: refuse it) or allow (an explicit opt-out).
	OnFailure string `yaml:"on_failure"`
	// Durability is when a record counts as written, and so when the message
	// it belongs to moves on: "group" (the default) once it is on stable
	// storage (one fdatasync per group commit; survives a crash and a power
	// cut), "os" once it is written to the operating system (survives a
	// crash of the gateway, not a power cut or kernel crash).
	Durability string `yaml:"durability"`
	// Retention is how long records are kept; 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
	// SigningKeyFile is a PEM PKCS #8 Ed25519 private key that signs the
	// log's heads. It is required: a gateway without one refuses to start.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SignEvery is the number of records between stored signed heads;
	// 0 means 1000.
	SignEvery int `yaml:"sign_every"`
	// SignInterval is how often the head is signed at least, idle or not;
	// 0 means 1m.
	SignInterval time.Duration `yaml:"sign_interval"`
	// Witness says where signed heads go besides the data file.
	Witness WitnessConfig `yaml:"witness"`
	// Auditors are the groups whose members may read the log over the API.
	Auditors []string `yaml:"auditors"`
}

// WitnessConfig names the witnesses of the log's signed heads.
type WitnessConfig struct {
	// File is appended one JSON line per signed head ([FileWitness]).
	File string `yaml:"file"`
	// Webhook posts each signed head as an "audit.head" event to every
	// notify entry of type webhook.
	Webhook bool `yaml:"webhook"`
}

// KeygenHint tells an operator how to make a signing key.
const KeygenHint = "create one with `bridge audit keygen --out /etc/bridge/audit-signing-key.pem` and set audit.signing_key_file to its path"

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
	switch Durability(c.Durability) {
	case "", DurabilityGroup, DurabilityOS:
	default:
		add("durability", "must be %q (every record on stable storage before its message moves on) or %q (written to the OS: survives a gateway crash, not a power cut), not %q", DurabilityGroup, DurabilityOS, c.Durability)
	}
	if c.Retention < 0 {
		add("retention", "must not be negative")
	} else if c.Retention > 0 && c.Retention < MinRetention {
		add("retention", "must be 0 (keep forever) or at least %s, not %s", MinRetention, c.Retention)
	}
	switch {
	case c.SigningKeyFile == "":
		add("signing_key_file", "is required: the gateway signs its audit log with an Ed25519 key; %s", KeygenHint)
	case strings.TrimSpace(c.SigningKeyFile) != c.SigningKeyFile:
		add("signing_key_file", "has leading or trailing spaces")
	}
	if c.SignEvery < 0 || c.SignEvery > 1_000_000 {
		add("sign_every", "must be between 1 and 1000000 (0: the default, 1000)")
	}
	if c.SignInterval < 0 || (c.SignInterval > 0 && c.SignInterval < time.Second) || c.SignInterval > 24*time.Hour {
		add("sign_interval", "must be between 1s and 24h (0: the default, 1m)")
	}
	if c.Witness.File == "" && !c.Witness.Webhook {
		add("witness", "name at least one witness that keeps the signed heads outside the data file: file: /another/disk/audit-heads.jsonl, or webhook: true (posted to the notify webhooks); without one, truncating or rolling back the whole file cannot be detected")
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

// DurabilityLevel returns the configured durability, DurabilityGroup when
// unset.
func (c *Config) DurabilityLevel() Durability {
	if c.Durability == "" {
		return DurabilityGroup
	}
	return Durability(c.Durability)
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

// LoadSigner reads the signing key named by SigningKeyFile.
func (c *Config) LoadSigner() (ed25519.PrivateKey, error) {
	if c.SigningKeyFile == "" {
		return nil, &FieldError{Path: "audit.signing_key_file", Msg: "is required; " + KeygenHint}
	}
	k, err := LoadPrivateKeyFile(c.SigningKeyFile)
	if err != nil {
		return nil, &FieldError{Path: "audit.signing_key_file", Msg: err.Error()}
	}
	return k, nil
}
