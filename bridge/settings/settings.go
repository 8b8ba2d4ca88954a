// Package settings resolves the client's organisation settings (the
// gateway URL, and optionally the identity provider's issuer and client
// id) from the places they can come from, and says where each came from.
//
// From weakest to strongest:
//
//  1. built in: baked into the binary by an admin's build with
//     -ldflags "-X main.defaultGateway=…";
//  2. managed: the machine-wide file an admin installs
//     (/etc/bridge/config.yaml, /Library/Application Support/bridge/config.yaml,
//     %ProgramData%\bridge\config.yaml);
//  3. user: the profile `bridge login` saves in BRIDGE_HOME/config.json;
//  4. flag: a command-line flag such as --gateway.
//
// A key the managed file lists under `locked:` takes the managed value
// whatever the user's profile says, and a flag that asks for a different
// value is refused.
package settings

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// The settings' keys, as written in the managed file.
const (
	Gateway  = "gateway"
	Issuer   = "issuer"
	ClientID = "client_id"
)

// Keys returns every key, in display order.
func Keys() []string { return []string{Gateway, Issuer, ClientID} }

// Values holds one value per key; "" means unset.
type Values struct {
	Gateway  string `yaml:"gateway"`
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
}

// Get returns the value of key.
func (v Values) Get(key string) string {
	switch key {
	case Gateway:
		return v.Gateway
	case Issuer:
		return v.Issuer
	case ClientID:
		return v.ClientID
	}
	return ""
}

// Managed is the machine-wide file an admin installs.
type Managed struct {
	// Path is where it was read from.
	Path   string
	Values `yaml:",inline"`
	// Locked are the keys a user cannot override.
	Locked []string `yaml:"locked"`
}

func (m *Managed) locks(key string) bool {
	if m == nil {
		return false
	}
	for _, k := range m.Locked {
		if k == key {
			return true
		}
	}
	return false
}

// ManagedPath returns the managed file's path on goos. getenv supplies
// ProgramData on Windows.
func ManagedPath(goos string, getenv func(string) string) string {
	switch goos {
	case "windows":
		dir := ""
		if getenv != nil {
			dir = getenv("ProgramData")
		}
		if dir == "" {
			dir = `C:\ProgramData`
		}
		return strings.TrimRight(dir, `\`) + `\bridge\config.yaml`
	case "darwin":
		return "/Library/Application Support/bridge/config.yaml"
	}
	return "/etc/bridge/config.yaml"
}

// maxManagedSize bounds the managed file.
const maxManagedSize = 64 << 10

// LoadManaged reads the managed file at p. It returns nil and no error when
// there is none. An unreadable or invalid file is an error: an admin's
// locks must not silently vanish.
func LoadManaged(p string) (*Managed, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("managed configuration %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManagedSize+1))
	if err != nil {
		return nil, fmt.Errorf("managed configuration %s: %w", p, err)
	}
	if len(data) > maxManagedSize {
		return nil, fmt.Errorf("managed configuration %s: larger than %d KiB", p, maxManagedSize>>10)
	}
	return ParseManaged(p, data)
}

// ParseManaged parses and validates a managed file's content; name is its
// path, for messages.
func ParseManaged(name string, data []byte) (m *Managed, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("managed configuration %s: the YAML decoder failed on this input", name)
		}
	}()
	m = &Managed{}
	if strings.TrimSpace(string(data)) != "" {
		if err := yaml.UnmarshalWithOptions(data, m, yaml.Strict()); err != nil {
			return nil, fmt.Errorf("managed configuration %s: %s", name, yamlMessage(err))
		}
	}
	m.Path = name
	var problems []string
	for _, k := range m.Locked {
		if !isKey(k) {
			problems = append(problems, fmt.Sprintf("locked: unknown key %q (want %s)", k, strings.Join(Keys(), ", ")))
		} else if m.Get(k) == "" {
			problems = append(problems, fmt.Sprintf("locked: %s has no value to lock", k))
		}
	}
	for _, k := range []string{Gateway, Issuer} {
		if v := m.Get(k); v != "" {
			if err := checkURL(v); err != nil {
				problems = append(problems, k+": "+err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("managed configuration %s: %s", name, strings.Join(problems, "; "))
	}
	m.Gateway = strings.TrimRight(m.Gateway, "/")
	return m, nil
}

// yamlMessage is the YAML library's message with its line, without the
// source excerpt it appends.
func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Sprintf("line %d: %s", tk.Position.Line, ye.GetMessage())
		}
		return ye.GetMessage()
	}
	return "invalid YAML"
}

func isKey(k string) bool {
	for _, x := range Keys() {
		if x == k {
			return true
		}
	}
	return false
}

func checkURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an http(s) URL", v)
	}
	return nil
}

// Setting is one resolved value and where it came from.
type Setting struct {
	Key   string
	Value string
	// Source says where Value came from: "flag", "user profile (PATH)",
	// "managed (PATH)", "managed, locked (PATH)", "built in", or "" when
	// the key is unset.
	Source string
	// Locked is set when the managed file locks the key.
	Locked bool
	// Ignored notes a user value the lock overrode.
	Ignored string
}

// Inputs are the values from each place.
type Inputs struct {
	BuiltIn Values
	Managed *Managed // nil when the machine has none
	User    Values
	// UserPath is where User came from, for Source.
	UserPath string
	Flags    Values
}

// LockedError is a flag asking for a value the managed file locks.
type LockedError struct {
	Key, Flag, Locked, Path string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked to %s by %s; %s cannot change it", e.Key, e.Locked, e.Path, e.Flag)
}

// Settings are the resolved settings.
type Settings struct {
	list []Setting
}

// Resolve resolves every key from in. It fails only when a flag asks for
// a value different from a locked one.
func Resolve(in Inputs) (*Settings, error) {
	s := &Settings{}
	managedPath := ""
	if in.Managed != nil {
		managedPath = in.Managed.Path
	}
	for _, k := range Keys() {
		st := Setting{Key: k}
		if in.Managed.locks(k) {
			st.Value, st.Source, st.Locked = in.Managed.Get(k), "managed, locked ("+managedPath+")", true
			if f := normalize(k, in.Flags.Get(k)); f != "" && f != st.Value {
				return nil, &LockedError{Key: k, Flag: "--" + strings.ReplaceAll(k, "_", "-"), Locked: st.Value, Path: managedPath}
			}
			if u := normalize(k, in.User.Get(k)); u != "" && u != st.Value {
				st.Ignored = "user profile says " + u
			}
			s.list = append(s.list, st)
			continue
		}
		switch {
		case in.Flags.Get(k) != "":
			st.Value, st.Source = in.Flags.Get(k), "flag"
		case in.User.Get(k) != "":
			st.Value, st.Source = in.User.Get(k), "user profile ("+in.UserPath+")"
		case in.Managed != nil && in.Managed.Get(k) != "":
			st.Value, st.Source = in.Managed.Get(k), "managed ("+managedPath+")"
		case in.BuiltIn.Get(k) != "":
			st.Value, st.Source = in.BuiltIn.Get(k), "built in"
		}
		st.Value = normalize(k, st.Value)
		s.list = append(s.list, st)
	}
	return s, nil
}

func normalize(key, v string) string {
	if key == Gateway {
		return strings.TrimRight(v, "/")
	}
	return v
}

// Get returns the setting for key.
func (s *Settings) Get(key string) Setting {
	for _, st := range s.list {
		if st.Key == key {
			return st
		}
	}
	return Setting{Key: key}
}

// All returns every setting in display order.
func (s *Settings) All() []Setting { return append([]Setting(nil), s.list...) }
