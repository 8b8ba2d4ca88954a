package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// Keyring is the small part of an OS keychain the keychain store needs.
// Get returns an error wrapping ErrKeyringNotFound for a missing entry.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, value string) error
	Delete(service, user string) error
}

// ErrKeyringNotFound is returned by a Keyring for a missing entry.
var ErrKeyringNotFound = errors.New("not found in the keychain")

// ErrKeyringTimeout is returned when the keychain does not answer within
// the store's timeout, for example because it is locked and waiting for a
// password prompt nobody sees.
var ErrKeyringTimeout = errors.New("the system keychain did not answer in time (is it locked?)")

// Keychain defaults.
const (
	// KeyringService is the service name entries are stored under.
	KeyringService = "bridge"
	// DefaultKeyringTimeout bounds each keychain call.
	DefaultKeyringTimeout = 3 * time.Second
	// DefaultKeyringChunkSize is the largest value written to one keychain
	// entry; Windows Credential Manager refuses blobs over 2560 bytes.
	DefaultKeyringChunkSize = 2048
	// maxKeyringChunks bounds how many chunks a manifest may name.
	maxKeyringChunks = 64
)

// SystemKeyring returns the operating system's keychain (macOS Keychain,
// Windows Credential Manager, or the Secret Service over D-Bus on Linux).
func SystemKeyring() Keyring { return systemKeyring{} }

type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) {
	v, err := keyring.Get(service, user)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", ErrKeyringNotFound
	}
	return v, err
}

func (systemKeyring) Set(service, user, value string) error {
	return keyring.Set(service, user, value)
}

func (systemKeyring) Delete(service, user string) error {
	err := keyring.Delete(service, user)
	if errors.Is(err, keyring.ErrNotFound) {
		return ErrKeyringNotFound
	}
	return err
}

// KeyringStore keeps tokens in an OS keychain, one entry per gateway under
// KeyringService. A value larger than ChunkSize is split into numbered
// chunk entries and the main entry holds a manifest naming their count and
// SHA-256 digest. Every keychain call is bounded by Timeout, so a locked or
// hung keychain returns ErrKeyringTimeout instead of hanging.
type KeyringStore struct {
	// Keyring is the keychain; it must not be nil.
	Keyring Keyring
	// Service overrides KeyringService.
	Service string
	// Timeout bounds each call; zero means DefaultKeyringTimeout.
	Timeout time.Duration
	// ChunkSize overrides DefaultKeyringChunkSize.
	ChunkSize int
}

// Entry encodings in the main keychain entry.
const (
	singlePrefix   = "bridge:v1:"
	manifestPrefix = "bridge-chunks:v1:"
)

func (s *KeyringStore) service() string {
	if s.Service != "" {
		return s.Service
	}
	return KeyringService
}

func (s *KeyringStore) chunkSize() int {
	if s.ChunkSize > len(manifestPrefix)+80 {
		return s.ChunkSize
	}
	return DefaultKeyringChunkSize
}

func chunkUser(key string, i int) string { return key + "#chunk-" + strconv.Itoa(i) }

// call runs f with the store's timeout. A call that times out keeps running
// in the background; its result is discarded.
func (s *KeyringStore) call(op string, f func() (string, error)) (string, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultKeyringTimeout
	}
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
		return "", fmt.Errorf("%w (%s after %s)", ErrKeyringTimeout, op, timeout)
	}
}

func (s *KeyringStore) get(user string) (string, error) {
	return s.call("read", func() (string, error) { return s.Keyring.Get(s.service(), user) })
}

func (s *KeyringStore) set(user, value string) error {
	_, err := s.call("write", func() (string, error) { return "", s.Keyring.Set(s.service(), user, value) })
	return err
}

func (s *KeyringStore) del(user string) error {
	_, err := s.call("delete", func() (string, error) { return "", s.Keyring.Delete(s.service(), user) })
	if errors.Is(err, ErrKeyringNotFound) {
		return nil
	}
	return err
}

// Probe checks that the keychain answers, by reading an entry that need
// not exist.
func (s *KeyringStore) Probe() error {
	_, err := s.get("bridge-probe")
	if err == nil || errors.Is(err, ErrKeyringNotFound) {
		return nil
	}
	return err
}

// Load implements Store.
func (s *KeyringStore) Load(key string) (*Token, error) {
	main, err := s.get(key)
	if errors.Is(err, ErrKeyringNotFound) {
		return nil, notLoggedIn("")
	}
	if err != nil {
		return nil, fmt.Errorf("reading token from the keychain: %w", err)
	}
	var payload string
	switch {
	case strings.HasPrefix(main, singlePrefix):
		payload = main[len(singlePrefix):]
	case strings.HasPrefix(main, manifestPrefix):
		m, err := parseManifest(main)
		if err != nil {
			return nil, fmt.Errorf("reading token from the keychain: %w", err)
		}
		var b strings.Builder
		for i := 1; i <= m.chunks; i++ {
			c, err := s.get(chunkUser(key, i))
			if err != nil {
				return nil, fmt.Errorf("reading token chunk %d from the keychain: %w", i, err)
			}
			b.WriteString(c)
		}
		payload = b.String()
		if sha256.Sum256([]byte(payload)) != m.digest {
			return nil, errors.New("reading token from the keychain: chunks do not match their manifest (concurrent write?)")
		}
	default:
		return nil, errors.New("reading token from the keychain: unrecognised entry format")
	}
	t, err := decodeToken([]byte(payload))
	if err != nil {
		return nil, fmt.Errorf("reading token from the keychain: %w", err)
	}
	return t, nil
}

// Save implements Store. Chunks are written before the manifest that names
// them, and chunks left over from a longer previous value are removed
// after it.
func (s *KeyringStore) Save(key string, t *Token) error {
	b, err := encodeToken(t)
	if err != nil {
		return fmt.Errorf("encoding token: %w", err)
	}
	payload := string(b)
	oldChunks := s.storedChunks(key)

	size := s.chunkSize()
	if len(singlePrefix)+len(payload) <= size {
		if err := s.set(key, singlePrefix+payload); err != nil {
			return fmt.Errorf("saving token to the keychain: %w", err)
		}
		s.deleteChunks(key, 1, oldChunks)
		return nil
	}
	chunks := splitChunks(payload, size)
	if len(chunks) > maxKeyringChunks {
		return fmt.Errorf("saving token to the keychain: token too large (%d bytes)", len(payload))
	}
	for i, c := range chunks {
		if err := s.set(chunkUser(key, i+1), c); err != nil {
			return fmt.Errorf("saving token chunk %d to the keychain: %w", i+1, err)
		}
	}
	m := manifest{chunks: len(chunks), digest: sha256.Sum256([]byte(payload))}
	if err := s.set(key, m.String()); err != nil {
		return fmt.Errorf("saving token to the keychain: %w", err)
	}
	s.deleteChunks(key, len(chunks)+1, oldChunks)
	return nil
}

// Delete implements Store.
func (s *KeyringStore) Delete(key string) error {
	n := s.storedChunks(key)
	if err := s.del(key); err != nil {
		return fmt.Errorf("deleting token from the keychain: %w", err)
	}
	s.deleteChunks(key, 1, n)
	return nil
}

// storedChunks returns how many chunks the current entry for key names,
// or zero.
func (s *KeyringStore) storedChunks(key string) int {
	main, err := s.get(key)
	if err != nil {
		return 0
	}
	m, err := parseManifest(main)
	if err != nil {
		return 0
	}
	return m.chunks
}

// deleteChunks removes chunks from..to, best effort: a leftover chunk is
// harmless because no manifest names it.
func (s *KeyringStore) deleteChunks(key string, from, to int) {
	for i := from; i <= to; i++ {
		_ = s.del(chunkUser(key, i))
	}
}

// splitChunks splits s into pieces of at most size bytes without cutting a
// UTF-8 sequence.
func splitChunks(s string, size int) []string {
	var out []string
	for len(s) > size {
		cut := size
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut = size
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// manifest is the main keychain entry of a chunked value:
// "bridge-chunks:v1:<count>:<sha256 hex>".
type manifest struct {
	chunks int
	digest [sha256.Size]byte
}

func (m manifest) String() string {
	return manifestPrefix + strconv.Itoa(m.chunks) + ":" + hex.EncodeToString(m.digest[:])
}

// parseManifest parses a manifest entry. Its errors never quote the input.
func parseManifest(s string) (manifest, error) {
	bad := errors.New("malformed chunk manifest")
	rest, ok := strings.CutPrefix(s, manifestPrefix)
	if !ok {
		return manifest{}, bad
	}
	count, digest, ok := strings.Cut(rest, ":")
	if !ok || len(count) == 0 || len(count) > 3 || len(digest) != 2*sha256.Size {
		return manifest{}, bad
	}
	for _, c := range count {
		if c < '0' || c > '9' {
			return manifest{}, bad
		}
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > maxKeyringChunks || strconv.Itoa(n) != count {
		return manifest{}, bad
	}
	var m manifest
	m.chunks = n
	if _, err := hex.Decode(m.digest[:], []byte(digest)); err != nil {
		return manifest{}, bad
	}
	if hex.EncodeToString(m.digest[:]) != digest {
		return manifest{}, bad // upper-case hex: keep the format canonical
	}
	return m, nil
}
