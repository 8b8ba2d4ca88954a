package auth

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotLoggedIn reports that no usable credentials exist for a gateway.
// Errors wrapping it tell the user to run `bridge login`.
var ErrNotLoggedIn = errors.New("not logged in")

// Store persists tokens per gateway. The key is the gateway URL.
// Implementations are safe for concurrent use by one process; the
// refresh lock in Source serialises writers across processes.
type Store interface {
	// Load returns the token saved under key, or an error wrapping
	// ErrNotLoggedIn when there is none.
	Load(key string) (*Token, error)
	// Save replaces the token saved under key.
	Save(key string, t *Token) error
	// Delete removes the token saved under key. Deleting a missing token
	// is not an error.
	Delete(key string) error
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	// Home is the client's home directory, used by the file store.
	Home string
	// Insecure selects the file store even when a keychain is available
	// (`bridge login --insecure-storage`).
	Insecure bool
	// Keyring is the OS keychain; nil means SystemKeyring().
	Keyring Keyring
	// Warn receives one line when tokens go to a file instead of the
	// keychain. Nil discards it.
	Warn io.Writer
	// Timeout bounds every keychain call; zero means DefaultKeyringTimeout.
	Timeout time.Duration
}

// OpenStore returns the keychain store when the keychain answers a probe,
// and otherwise (or when opts.Insecure is set) the file store under
// opts.Home, writing one warning line to opts.Warn that says where tokens
// are kept and why.
func OpenStore(opts StoreOptions) Store {
	file := &FileStore{Dir: TokensDir(opts.Home)}
	if opts.Insecure {
		warnFileStore(opts.Warn, file.Dir, "--insecure-storage was requested")
		return file
	}
	kr := opts.Keyring
	if kr == nil {
		kr = SystemKeyring()
	}
	ks := &KeyringStore{Keyring: kr, Timeout: opts.Timeout}
	if err := ks.Probe(); err != nil {
		warnFileStore(opts.Warn, file.Dir, "the system keychain is unavailable: "+err.Error())
		return file
	}
	return ks
}

func warnFileStore(w io.Writer, dir, why string) {
	if w == nil {
		return
	}
	_, _ = fmt.Fprintf(w, "warning: tokens are stored in a file under %s (mode 0600), not the system keychain, because %s\n", dir, why)
}

// notLoggedIn wraps ErrNotLoggedIn with the action the user should take.
func notLoggedIn(why string) error {
	if why == "" {
		return fmt.Errorf("%w: run `bridge login`", ErrNotLoggedIn)
	}
	return fmt.Errorf("%w (%s): run `bridge login`", ErrNotLoggedIn, why)
}
