package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// HomeEnv is the environment variable that overrides the client's
// configuration and token directory.
const HomeEnv = "BRIDGE_HOME"

// ErrNoProfile reports that no profile has been saved yet.
var ErrNoProfile = errors.New("no gateway configured: run `bridge login --gateway URL`")

// DefaultHome returns the client's home directory: $BRIDGE_HOME when set,
// otherwise os.UserConfigDir()/bridge. getenv is the caller's environment
// lookup (os.Getenv in main, a map in tests).
func DefaultHome(getenv func(string) string) (string, error) {
	if getenv != nil {
		if h := getenv(HomeEnv); h != "" {
			return filepath.Clean(h), nil
		}
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory (set %s): %w", HomeEnv, err)
	}
	return filepath.Join(dir, "bridge"), nil
}

// Profile is what `bridge login` learned about the gateway, saved in
// <home>/config.json. It holds no secrets.
type Profile struct {
	Gateway  string   `json:"gateway"`
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Audience string   `json:"audience,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// InsecureStorage records that tokens are in a file, not the keychain
	// (`bridge login --insecure-storage`).
	InsecureStorage bool `json:"insecure_storage,omitempty"`
}

// ProfilePath returns the path of the profile file inside home.
func ProfilePath(home string) string { return filepath.Join(home, "config.json") }

// LoadProfile reads the profile from home. It returns an error wrapping
// ErrNoProfile when none has been saved.
func LoadProfile(home string) (*Profile, error) {
	b, err := os.ReadFile(ProfilePath(home))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoProfile
	}
	if err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("reading profile %s: %w", ProfilePath(home), err)
	}
	return &p, nil
}

// SaveProfile writes p to <home>/config.json with mode 0600, creating home
// with mode 0700. The write is atomic.
func SaveProfile(home string, p *Profile) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding profile: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", home, err)
	}
	return writeFileAtomic(ProfilePath(home), append(b, '\n'))
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory and a rename, so readers see the old or the
// new content and never a torn file.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
