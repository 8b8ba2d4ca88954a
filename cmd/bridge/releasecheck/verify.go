package releasecheck

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VerifySignature checks a cosign key-based blob signature: sigB64 is what
// `cosign sign-blob --key` writes (base64 of an ASN.1 ECDSA signature over
// the SHA-256 of the blob) and pubPEM is cosign.pub (a PKIX public key).
// `cosign verify-blob --key cosign.pub --signature checksums.txt.sig
// checksums.txt` accepts exactly these.
func VerifySignature(pubPEM, blob, sigB64 []byte) error {
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return errors.New("the public key is not a PEM PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("parsing the public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("the public key is not an ECDSA key")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigB64)))
	if err != nil {
		return errors.New("the signature is not base64")
	}
	digest := sha256.Sum256(blob)
	if !ecdsa.VerifyASN1(ec, digest[:], sig) {
		return errors.New("the signature does not match the checksums file")
	}
	return nil
}

// VerifyChecksums checks every file that checksums (goreleaser's
// checksums.txt: "<sha256>  <name>" per line) names in dir, like
// `sha256sum -c`.
func VerifyChecksums(dir string, checksums []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(checksums))
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != sha256.Size*2 || name == "" || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("malformed checksums line %q", line)
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			return fmt.Errorf("%s: checksum mismatch", name)
		}
		n++
	}
	if n == 0 {
		return errors.New("the checksums file names no files")
	}
	return sc.Err()
}
