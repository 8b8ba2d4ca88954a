package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// TokensDir returns the file store's directory inside home.
func TokensDir(home string) string { return filepath.Join(home, "tokens") }

// FileStore keeps each gateway's token in <Dir>/<sha256(key)[:16]>.json,
// mode 0600, in a directory of mode 0700. Writes are atomic (temporary file
// and rename), so concurrent readers in other processes never see a torn
// token.
type FileStore struct {
	// Dir is the token directory, usually TokensDir(home).
	Dir string

	mu sync.Mutex
}

// path returns the file holding key's token.
func (s *FileStore) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.Dir, hex.EncodeToString(sum[:])[:16]+".json")
}

// Load implements Store.
func (s *FileStore) Load(key string) (*Token, error) {
	if s.Dir == "" {
		return nil, errors.New("file token store has no directory")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notLoggedIn("")
	}
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	t, err := decodeToken(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path(key), err)
	}
	return t, nil
}

// Save implements Store.
func (s *FileStore) Save(key string, t *Token) error {
	if s.Dir == "" {
		return errors.New("file token store has no directory")
	}
	b, err := encodeToken(t)
	if err != nil {
		return fmt.Errorf("encoding token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating token directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; tighten it.
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return fmt.Errorf("securing token directory: %w", err)
	}
	return writeFileAtomic(s.path(key), b)
}

// Delete implements Store.
func (s *FileStore) Delete(key string) error {
	if s.Dir == "" {
		return errors.New("file token store has no directory")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting token: %w", err)
	}
	return nil
}
