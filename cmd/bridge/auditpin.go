package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/seed-3f9f6f16/bridge/audit"
)

// auditPins is what the auditor's CLI remembers about one gateway's log,
// under BRIDGE_HOME/audit/<gateway digest>/: the public key pinned on first
// use and the last signed head it verified. The CLI is thereby a witness:
// a later log that does not continue that head is refused.
type auditPins struct{ dir string }

func newAuditPins(home, gateway string) *auditPins {
	sum := sha256.Sum256([]byte(gateway))
	return &auditPins{dir: filepath.Join(home, "audit", hex.EncodeToString(sum[:8]))}
}

func (p *auditPins) key() (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, "public-key.pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return audit.ParsePublicKeyPEM(b)
}

func (p *auditPins) saveKey(pub ed25519.PublicKey) error {
	b, err := audit.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, "public-key.pem"), b, 0o600)
}

func (p *auditPins) lastHead() (*audit.Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, "last-head.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hs, err := audit.ParseHeads(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("the last head remembered in %s: %w", p.dir, err)
	}
	return &hs[0], nil
}

func (p *auditPins) saveHead(h *audit.Checkpoint) error {
	if h == nil {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(p.dir, "last-head.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.dir, "last-head.json"))
}
