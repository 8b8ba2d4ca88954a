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
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit/merkle"
)

// Checkpoint is a signed tree head: "the log's first Seq records have the
// RFC 6962 Merkle root Root, and record Seq has the hash Hash", signed at
// Time with the Ed25519 key KeyID. A verifier holding only the public key can
// prove that a log matches what the gateway wrote up to Seq, that it was not
// truncated below Seq, and (from two heads) that the later log continues
// the earlier one.
//
// The log stores checkpoints on a cadence of records and of time and hands
// each to its witnesses; every commit also embeds a signed head of the state
// before it in its first record ([Record.Signed]). MaxGap and Interval are
// the signer's promise, covered by the signature: at most MaxGap records go
// between two signatures, and an idle log is signed at least every Interval.
type Checkpoint struct {
	Seq        uint64    `json:"seq"`
	Hash       string    `json:"hash"` // "" for the empty log
	Root       string    `json:"root"` // lowercase hex
	Time       time.Time `json:"time"`
	MaxGap     uint64    `json:"max_gap,omitempty"`
	IntervalMS int64     `json:"interval_ms,omitempty"`
	KeyID      string    `json:"key_id"`
	Signature  string    `json:"signature"` // standard base64 of the Ed25519 signature over SignedBytes
	// Frontier is not signed: on a retention anchor it holds the Merkle
	// compact range of the pruned prefix (hex, largest subtree first), which
	// must hash to Root, so the rest of the tree can be recomputed without
	// the pruned records.
	Frontier []string `json:"frontier,omitempty"`
}

// SignedBytes returns the exact bytes the signature covers:
//
//	"bridge-audit-head-v2\n" +
//	"seq=" + decimal Seq + "\n" +
//	"hash=" + Hash + "\n" +
//	"root=" + Root + "\n" +
//	"time=" + Time in UTC, RFC 3339 with nanoseconds (Go's time.RFC3339Nano) + "\n" +
//	"max_gap=" + decimal MaxGap + "\n" +
//	"interval_ms=" + decimal IntervalMS + "\n" +
//	"key=" + KeyID + "\n"
func (c Checkpoint) SignedBytes() []byte {
	b := []byte("bridge-audit-head-v2\n")
	b = append(b, "seq="...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nhash="...)
	b = append(b, c.Hash...)
	b = append(b, "\nroot="...)
	b = append(b, c.Root...)
	b = append(b, "\ntime="...)
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\nmax_gap="...)
	b = strconv.AppendUint(b, c.MaxGap, 10)
	b = append(b, "\ninterval_ms="...)
	b = strconv.AppendInt(b, c.IntervalMS, 10)
	b = append(b, "\nkey="...)
	b = append(b, c.KeyID...)
	return append(b, '\n')
}

// Interval returns the signing interval the head promises (0: none).
func (c Checkpoint) Interval() time.Duration { return time.Duration(c.IntervalMS) * time.Millisecond }

// headTerms are what a signer promises in every head it signs.
type headTerms struct {
	maxGap   uint64
	interval time.Duration
}

// signHead returns the signed head of a tree.
func signHead(key ed25519.PrivateKey, terms headTerms, seq uint64, hash string, root merkle.Hash, at time.Time) Checkpoint {
	c := Checkpoint{
		Seq: seq, Hash: hash, Root: root.String(), Time: at.UTC(),
		MaxGap: terms.maxGap, IntervalMS: terms.interval.Milliseconds(),
		KeyID: KeyID(key.Public().(ed25519.PublicKey)),
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedBytes()))
	return c
}

// VerifySignature checks c's signature against pub.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("audit: invalid public key")
	}
	if c.KeyID != KeyID(pub) {
		return fmt.Errorf("audit: the head of record %d was signed by key %q, not %q", c.Seq, printableID(c.KeyID), KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return fmt.Errorf("audit: the head of record %d: signature invalid", c.Seq)
	}
	return nil
}

func printableID(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// RootHash parses c.Root.
func (c Checkpoint) RootHash() (merkle.Hash, error) { return merkle.ParseHash(c.Root) }

// ParseHeads reads signed heads as a witness keeps them: JSON objects, one
// per line or concatenated, as [FileWitness] writes them, `bridge audit
// head` prints them, or a webhook receiver stores them. Unknown fields are
// refused. At most maxHeads are read.
func ParseHeads(r io.Reader) ([]Checkpoint, error) {
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	dec.DisallowUnknownFields()
	var out []Checkpoint
	for {
		var c Checkpoint
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit: signed head %d: %w", len(out)+1, err)
		}
		if _, err := c.RootHash(); err != nil {
			return nil, fmt.Errorf("audit: signed head %d: root: %w", len(out)+1, err)
		}
		if len(out) == maxHeads {
			return nil, fmt.Errorf("audit: more than %d signed heads", maxHeads)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("audit: no signed head found")
	}
	return out, nil
}

// maxHeads bounds ParseHeads.
const maxHeads = 1 << 20

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

// WriteNewKey generates an Ed25519 key pair from random and writes the
// private key to privPath (PEM PKCS #8, mode 0600, never over an existing
// file) and the public key to privPath + ".pub" (PEM PKIX, 0644).
func WriteNewKey(privPath string, random io.Reader) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("audit: generate key: %w", err)
	}
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		return nil, err
	}
	pubPEM, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(privPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if _, err := f.Write(privPEM); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if err := os.WriteFile(privPath+".pub", pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	return pub, nil
}
