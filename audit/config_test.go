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
	key, wit := "/etc/bridge/key.pem", WitnessConfig{File: "/var/log/heads.jsonl"}
	ok := []Config{
		{SigningKeyFile: key, Witness: wit},
		{OnFailure: "deny", Retention: 2160 * time.Hour, Auditors: []string{"sec"}, SigningKeyFile: key, Witness: WitnessConfig{Webhook: true}, SignEvery: 10, SignInterval: time.Second},
		{OnFailure: "allow", SigningKeyFile: key, Witness: wit},
		{Durability: "group", SigningKeyFile: key, Witness: wit},
		{Durability: "os", SigningKeyFile: key, Witness: wit},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := Config{OnFailure: "maybe", Durability: "none", Retention: time.Minute, Auditors: []string{"a", "", "a"}}
	err := bad.Validate()
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		paths = append(paths, fe.Path)
	}
	want := "audit.on_failure audit.durability audit.retention audit.signing_key_file audit.witness audit.auditors[1] audit.auditors[2]"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if err := (&Config{Witness: wit}).Validate(); err == nil || !strings.Contains(err.Error(), "bridge audit keygen") {
		t.Errorf("a config without a key: %v, want how to make one", err)
	}
	if (&Config{SigningKeyFile: key, Witness: wit, SignInterval: time.Millisecond}).Validate() == nil {
		t.Error("a sign interval of 1ms accepted")
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
	if _, err := (&Config{}).LoadSigner(); err == nil || !strings.Contains(err.Error(), "bridge audit keygen") {
		t.Fatalf("no key configured: %v, want how to make one", err)
	}
}
