package releasecheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// artifact is an entry of goreleaser's dist/artifacts.json.
type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goos   string `json:"goos"`
	Goarch string `json:"goarch"`
	Type   string `json:"type"`
}

// snapshotBinary returns the binary the snapshot built for this machine.
func snapshotBinary(t *testing.T, dist string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dist, "artifacts.json"))
	if err != nil {
		t.Fatalf("reading the snapshot's artifacts: %v", err)
	}
	var arts []artifact
	if err := json.Unmarshal(data, &arts); err != nil {
		t.Fatal(err)
	}
	for _, a := range arts {
		if a.Type == "Binary" && a.Goos == runtime.GOOS && a.Goarch == runtime.GOARCH {
			p := a.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(dist), p)
			}
			return p
		}
	}
	t.Fatalf("no %s/%s binary in %s", runtime.GOOS, runtime.GOARCH, dist)
	return ""
}

// archive packs files into a tar.gz the way goreleaser does, every entry
// stamped with mtime so the archive is reproducible.
func archive(t *testing.T, dst string, mtime time.Time, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(files[name])
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestReleaseSignAndVerify signs the snapshot's checksums with a throwaway
// cosign-compatible key (ECDSA P-256, the key type `cosign generate-key-pair`
// makes) and verifies them as docs/admin.md tells users to: the signature
// over checksums.txt, then each file's checksum. A tampered archive and a
// tampered checksums file must both fail.
func TestReleaseSignAndVerify(t *testing.T) {
	if os.Getenv("BRIDGE_RELEASE_TEST") != "1" {
		t.Skip("set BRIDGE_RELEASE_TEST=1 after a goreleaser snapshot build (.ci/release-check does)")
	}
	dist := os.Getenv("BRIDGE_RELEASE_DIST")
	if dist == "" {
		t.Fatal("BRIDGE_RELEASE_DIST is not set")
	}
	bin := snapshotBinary(t, dist)

	// The binary runs and reports the snapshot's version and commit.
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	if !strings.Contains(string(out), "snapshot") {
		t.Errorf("version output lacks the snapshot version:\n%s", out)
	}
	// Reproducible timestamps: the binary carries the commit's time.
	commitTime := time.Unix(0, 0)
	if ct, err := exec.Command("git", "log", "-1", "--format=%ct").Output(); err == nil {
		sec, _ := strconv.ParseInt(strings.TrimSpace(string(ct)), 10, 64)
		commitTime = time.Unix(sec, 0)
		if fi, err := os.Stat(bin); err == nil && !fi.ModTime().Equal(commitTime) {
			t.Errorf("binary mtime %v, want the commit time %v (mod_timestamp)", fi.ModTime(), commitTime)
		}
	}

	// Package and checksum it as a release would.
	dir := t.TempDir()
	name := "bridge_snapshot_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	archive(t, filepath.Join(dir, name), commitTime, map[string]string{"bridge": bin})
	archive(t, filepath.Join(dir, "again.tar.gz"), commitTime, map[string]string{"bridge": bin})
	if sha256File(t, filepath.Join(dir, name)) != sha256File(t, filepath.Join(dir, "again.tar.gz")) {
		t.Error("two archives of the same snapshot differ")
	}
	_ = os.Remove(filepath.Join(dir, "again.tar.gz"))
	checksums := []byte(sha256File(t, filepath.Join(dir, name)) + "  " + name + "\n")
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), checksums, 0o644); err != nil {
		t.Fatal(err)
	}

	// Sign with a throwaway key, as `cosign sign-blob --key` does.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	digest := sha256.Sum256(checksums)
	rawSig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(base64.StdEncoding.EncodeToString(rawSig))
	writeAll(t, dir, map[string][]byte{"cosign.pub": pub, "checksums.txt.sig": sig, "checksums.sig.der": rawSig})

	if err := VerifySignature(pub, checksums, sig); err != nil {
		t.Fatalf("the genuine signature does not verify: %v", err)
	}
	if err := VerifyChecksums(dir, checksums); err != nil {
		t.Fatalf("the genuine archive does not verify: %v", err)
	}
	// The user-facing tools agree, where present.
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := run(dir, "openssl", "dgst", "-sha256", "-verify", "cosign.pub", "-signature", "checksums.sig.der", "checksums.txt")
		if err != nil || !strings.Contains(out, "Verified OK") {
			t.Errorf("openssl does not verify the signature: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		if out, err := run(dir, "sha256sum", "-c", "checksums.txt"); err != nil {
			t.Errorf("sha256sum -c fails on the genuine archive: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("cosign"); err == nil {
		if out, err := run(dir, "cosign", "verify-blob", "--key", "cosign.pub", "--signature", "checksums.txt.sig", "--insecure-ignore-tlog=true", "checksums.txt"); err != nil {
			t.Errorf("cosign verify-blob fails: %v\n%s", err, out)
		}
	}

	// A tampered archive fails its checksum.
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifyChecksums(dir, checksums); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("a tampered archive passed: %v", err)
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		if _, err := run(dir, "sha256sum", "-c", "checksums.txt"); err == nil {
			t.Error("sha256sum -c accepts a tampered archive")
		}
	}

	// A checksums file edited to match the tampered archive fails the
	// signature; so does a signature from another key.
	forged := []byte(sha256File(t, path) + "  " + name + "\n")
	if err := VerifySignature(pub, forged, sig); err == nil {
		t.Error("a forged checksums file passed the signature check")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherSig, _ := ecdsa.SignASN1(rand.Reader, other, digest[:])
	if err := VerifySignature(pub, checksums, []byte(base64.StdEncoding.EncodeToString(otherSig))); err == nil {
		t.Error("a signature by another key passed")
	}
}

func writeAll(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func run(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
