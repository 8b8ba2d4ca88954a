package audit

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := []Config{{}, {OnFailure: "deny", Retention: 2160 * time.Hour, Auditors: []string{"sec"}}, {OnFailure: "allow"}}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := Config{OnFailure: "maybe", Retention: time.Minute, Auditors: []string{"a", "", "a"}}
	err := bad.Validate()
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		paths = append(paths, fe.Path)
	}
	want := "audit.on_failure audit.retention audit.auditors[1] audit.auditors[2]"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if (&Config{Retention: -1}).Validate() == nil {
		t.Error("negative retention accepted")
	}
	if (&Config{}).FailOpen() || !(&Config{OnFailure: "allow"}).FailOpen() {
		t.Error("FailOpen")
	}
	if !(&Config{Auditors: []string{"sec"}}).IsAuditor([]string{"eng", "sec"}) || (&Config{}).IsAuditor([]string{"sec"}) {
		t.Error("IsAuditor")
	}
}

func TestKeyFiles(t *testing.T) {
	key := testKey(t, 9)
	dir := t.TempDir()
	privPEM, _ := MarshalPrivateKeyPEM(key)
	pubPEM, _ := MarshalPublicKeyPEM(key.Public().(ed25519.PublicKey))
	privPath, pubPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	os.WriteFile(privPath, privPEM, 0o600)
	os.WriteFile(pubPath, pubPEM, 0o644)

	c := Config{SigningKeyFile: privPath}
	got, err := c.LoadSigner()
	if err != nil || !got.Equal(key) {
		t.Fatalf("LoadSigner: %v", err)
	}
	pub, err := LoadPublicKeyFile(pubPath)
	if err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("LoadPublicKeyFile: %v", err)
	}
	if _, err := ParsePrivateKeyPEM(pubPEM); err == nil {
		t.Error("public key accepted as private")
	}
	if _, err := ParsePublicKeyPEM([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
	c.SigningKeyFile = filepath.Join(dir, "missing.pem")
	var fe *FieldError
	if _, err := c.LoadSigner(); !errors.As(err, &fe) || fe.Path != "audit.signing_key_file" {
		t.Fatalf("missing key: %v", err)
	}
	if k, err := (&Config{}).LoadSigner(); k != nil || err != nil {
		t.Fatal("no key configured should be nil, nil")
	}
}
