package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKeyring is an in-memory Keyring with failure switches.
type fakeKeyring struct {
	mu      sync.Mutex
	entries map[string]string
	limit   int           // reject values longer than this (0: no limit)
	err     error         // returned by every call when set
	hang    chan struct{} // calls block until closed when set
	sets    int
}

func newFakeKeyring() *fakeKeyring { return &fakeKeyring{entries: map[string]string{}} }

func (k *fakeKeyring) wait() error {
	if k.hang != nil {
		<-k.hang
	}
	return k.err
}

func (k *fakeKeyring) Get(service, user string) (string, error) {
	if err := k.wait(); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.entries[service+"/"+user]
	if !ok {
		return "", ErrKeyringNotFound
	}
	return v, nil
}

func (k *fakeKeyring) Set(service, user, value string) error {
	if err := k.wait(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.limit > 0 && len(value) > k.limit {
		return errors.New("data passed to Set was too big")
	}
	k.sets++
	k.entries[service+"/"+user] = value
	return nil
}

func (k *fakeKeyring) Delete(service, user string) error {
	if err := k.wait(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.entries[service+"/"+user]; !ok {
		return ErrKeyringNotFound
	}
	delete(k.entries, service+"/"+user)
	return nil
}

func (k *fakeKeyring) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}

func sampleToken(size int) *Token {
	return &Token{
		AccessToken:  Secret("at-" + strings.Repeat("A", size)),
		RefreshToken: Secret("rt-secret"),
		IDToken:      Secret("id-" + strings.Repeat("é", size/4)), // multi-byte runes across chunk borders
		TokenType:    "Bearer",
		Expiry:       time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

const gw = "https://gw.example.com"

func testStoreRoundTrip(t *testing.T, s Store) {
	t.Helper()
	if _, err := s.Load(gw); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Load before Save: %v, want ErrNotLoggedIn", err)
	}
	for _, size := range []int{10, 7000, 100} { // single, chunked, then shrink
		in := sampleToken(size)
		if err := s.Save(gw, in); err != nil {
			t.Fatalf("Save(%d): %v", size, err)
		}
		out, err := s.Load(gw)
		if err != nil {
			t.Fatalf("Load(%d): %v", size, err)
		}
		if *out != *in {
			t.Fatalf("Load(%d) returned a different token", size)
		}
	}
	if _, err := s.Load("https://other.example.com"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("other key: %v", err)
	}
	if err := s.Delete(gw); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(gw); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := s.Load(gw); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Load after Delete: %v", err)
	}
}

func TestFileStore(t *testing.T) {
	home := t.TempDir()
	s := &FileStore{Dir: TokensDir(home)}
	testStoreRoundTrip(t, s)
	if err := s.Save(gw, sampleToken(10)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, s.Dir, 0o700)
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".json") || len(entries[0].Name()) != 16+len(".json") {
		t.Fatalf("token dir holds %v, want one <16 hex>.json", entries)
	}
	assertMode(t, filepath.Join(s.Dir, entries[0].Name()), 0o600)

	// A loosened directory is tightened on the next save.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(gw, sampleToken(10)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, s.Dir, 0o700)

	// Corrupt files give an error that does not quote the content.
	if err := os.WriteFile(filepath.Join(s.Dir, entries[0].Name()), []byte(`{"access_token":"leak-me`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(gw); err == nil || strings.Contains(err.Error(), "leak-me") {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestKeyringStoreChunking(t *testing.T) {
	kr := newFakeKeyring()
	kr.limit = DefaultKeyringChunkSize // like Windows Credential Manager
	s := &KeyringStore{Keyring: kr}
	testStoreRoundTrip(t, s)
	if n := kr.count(); n != 0 {
		t.Fatalf("%d entries left after Delete", n)
	}

	if err := s.Save(gw, sampleToken(7000)); err != nil {
		t.Fatal(err)
	}
	if n := kr.count(); n < 4 {
		t.Fatalf("a 9 KB token took %d entries, want a manifest and chunks", n)
	}
	main := kr.entries[KeyringService+"/"+gw]
	if _, err := parseManifest(main); err != nil {
		t.Fatalf("main entry is not a manifest: %v", err)
	}
	// Shrinking removes the chunks.
	if err := s.Save(gw, sampleToken(10)); err != nil {
		t.Fatal(err)
	}
	if n := kr.count(); n != 1 {
		t.Fatalf("after shrinking: %d entries, want 1", n)
	}

	// A chunk that no longer matches the manifest is detected.
	if err := s.Save(gw, sampleToken(7000)); err != nil {
		t.Fatal(err)
	}
	kr.entries[KeyringService+"/"+chunkUser(gw, 2)] = strings.Repeat("x", 10)
	if _, err := s.Load(gw); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Fatalf("tampered chunk: %v", err)
	}
}

func TestKeyringStoreTooLarge(t *testing.T) {
	s := &KeyringStore{Keyring: newFakeKeyring()}
	if err := s.Save(gw, sampleToken(maxKeyringChunks*DefaultKeyringChunkSize)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized token: %v", err)
	}
}

func TestKeyringStoreHung(t *testing.T) {
	kr := newFakeKeyring()
	kr.hang = make(chan struct{})
	t.Cleanup(func() { close(kr.hang) })
	s := &KeyringStore{Keyring: kr, Timeout: 10 * time.Millisecond}
	for name, op := range map[string]func() error{
		"load":   func() error { _, err := s.Load(gw); return err },
		"save":   func() error { return s.Save(gw, sampleToken(10)) },
		"delete": func() error { return s.Delete(gw) },
		"probe":  s.Probe,
	} {
		if err := op(); !errors.Is(err, ErrKeyringTimeout) {
			t.Errorf("%s on a hung keychain: %v, want ErrKeyringTimeout", name, err)
		}
	}
}

func TestOpenStore(t *testing.T) {
	t.Run("keychain available", func(t *testing.T) {
		var warn bytes.Buffer
		s := OpenStore(StoreOptions{Home: t.TempDir(), Keyring: newFakeKeyring(), Warn: &warn})
		if _, ok := s.(*KeyringStore); !ok {
			t.Fatalf("got %T, want *KeyringStore", s)
		}
		if warn.Len() != 0 {
			t.Fatalf("unexpected warning %q", warn.String())
		}
	})
	for _, tc := range []struct {
		name     string
		opts     StoreOptions
		kr       *fakeKeyring
		wantWhy  string
		hungRing bool
	}{
		{name: "no secret service", kr: &fakeKeyring{err: errors.New("The name org.freedesktop.secrets was not provided by any .service files")}, wantWhy: "org.freedesktop.secrets"},
		{name: "insecure requested", opts: StoreOptions{Insecure: true}, kr: newFakeKeyring(), wantWhy: "--insecure-storage"},
		{name: "hung keychain", kr: &fakeKeyring{hang: make(chan struct{})}, wantWhy: "did not answer in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kr.hang != nil {
				t.Cleanup(func() { close(tc.kr.hang) })
			}
			var warn bytes.Buffer
			home := t.TempDir()
			opts := tc.opts
			opts.Home, opts.Keyring, opts.Warn, opts.Timeout = home, tc.kr, &warn, 10*time.Millisecond
			s := OpenStore(opts)
			fs, ok := s.(*FileStore)
			if !ok {
				t.Fatalf("got %T, want *FileStore", s)
			}
			if fs.Dir != TokensDir(home) {
				t.Errorf("file store dir %q", fs.Dir)
			}
			w := warn.String()
			if strings.Count(w, "\n") != 1 || !strings.Contains(w, "file") || !strings.Contains(w, tc.wantWhy) {
				t.Errorf("warning = %q, want one line mentioning the file and %q", w, tc.wantWhy)
			}
			if err := s.Save(gw, sampleToken(10)); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(fmt.Sprint(warn.String()), "rt-secret") {
				t.Fatal("secret in warning")
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifest{chunks: 3}.String())
	f.Add(manifestPrefix + "64:" + strings.Repeat("ab", 32))
	f.Add(manifestPrefix + "0:")
	f.Add(manifestPrefix + "+1:" + strings.Repeat("AB", 32))
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseManifest(s)
		if err != nil {
			if err.Error() != "malformed chunk manifest" {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if m.chunks < 1 || m.chunks > maxKeyringChunks {
			t.Fatalf("accepted %d chunks", m.chunks)
		}
		if m.String() != s {
			t.Fatalf("non-canonical manifest accepted: %q", s)
		}
	})
}

func FuzzSplitChunks(f *testing.F) {
	f.Add("hello world", 4)
	f.Add("ééééé", 3)
	f.Fuzz(func(t *testing.T, s string, size int) {
		if size < 4 || size > 1<<12 {
			return
		}
		chunks := splitChunks(s, size)
		if strings.Join(chunks, "") != s {
			t.Fatal("chunks do not reassemble")
		}
		for _, c := range chunks {
			if len(c) > size || c == "" {
				t.Fatalf("chunk of %d bytes (size %d)", len(c), size)
			}
		}
	})
}
