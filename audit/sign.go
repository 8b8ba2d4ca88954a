package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Checkpoint is a signed statement of the chain head: "the record with Seq
// has Hash". A verifier holding only the public key can prove that a log
// matches what the gateway wrote up to Seq, and that it was not truncated
// below Seq.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"` // standard base64 of the Ed25519 signature over SignedBytes
}

// SignedBytes returns the exact bytes the signature covers:
//
//	"bridge-audit-checkpoint-v1\n" +
//	"seq=" + decimal Seq + "\n" +
//	"hash=" + Hash + "\n" +
//	"time=" + Time in UTC, RFC 3339 with nanoseconds (Go's time.RFC3339Nano) + "\n"
func (c Checkpoint) SignedBytes() []byte {
	b := []byte("bridge-audit-checkpoint-v1\n")
	b = append(b, "seq="...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nhash="...)
	b = append(b, c.Hash...)
	b = append(b, "\ntime="...)
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '\n')
}

// signCheckpoint returns a checkpoint for (seq, hash, at) signed with key.
func signCheckpoint(key ed25519.PrivateKey, seq uint64, hash string, at time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: hash, Time: at.UTC(), KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedBytes()))
	return c
}

// VerifySignature checks c's signature against pub.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("audit: invalid public key")
	}
	if c.KeyID != KeyID(pub) {
		return fmt.Errorf("audit: checkpoint %d was signed by key %q, not %q", c.Seq, c.KeyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return fmt.Errorf("audit: checkpoint %d: signature invalid", c.Seq)
	}
	return nil
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of its 32
// raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePrivateKeyPEM parses a PEM "PRIVATE KEY" block holding a PKCS #8
// Ed25519 key (as `openssl genpkey -algorithm ed25519` writes).
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("audit: signing key: want a PEM \"PRIVATE KEY\" block (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key: want Ed25519, got %T", k)
	}
	return priv, nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" block holding a PKIX Ed25519
// key (as `openssl pkey -pubout` writes).
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: public key: want a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key: want Ed25519, got %T", k)
	}
	return pub, nil
}

// LoadPrivateKeyFile reads and parses a PEM PKCS #8 Ed25519 private key.
// The error never contains the file's content.
func LoadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	return ParsePrivateKeyPEM(data)
}

// LoadPublicKeyFile reads and parses a PEM PKIX Ed25519 public key.
func LoadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	return ParsePublicKeyPEM(data)
}

// MarshalPrivateKeyPEM encodes key as a PEM PKCS #8 "PRIVATE KEY" block.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes pub as a PEM PKIX "PUBLIC KEY" block.
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func encodeCheckpoint(c Checkpoint) ([]byte, error) { return json.Marshal(c) }

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	err := json.Unmarshal(b, &c)
	return c, err
}
