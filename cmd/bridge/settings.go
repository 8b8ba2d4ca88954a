package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/settings"
)

// managedConfigPath is the machine-wide managed configuration file on this
// OS (/etc/bridge/config.yaml, /Library/Application Support/bridge/config.yaml
// or %ProgramData%\bridge\config.yaml).
func managedConfigPath(f *Factory) string { return settings.ManagedPath(runtime.GOOS, f.Getenv) }

// resolveSettings resolves the organisation settings: flags over the
// user's profile (prof, saved in home; nil when there is none) over the
// managed file at managedPath over builtIn, except keys the managed file
// locks. A broken managed file is an error: an admin's locks never
// silently vanish.
func resolveSettings(managedPath string, builtIn settings.Values, home string, prof *auth.Profile, flags settings.Values) (*settings.Settings, error) {
	m, err := settings.LoadManaged(managedPath)
	if err != nil {
		return nil, err
	}
	in := settings.Inputs{BuiltIn: builtIn, Managed: m, Flags: flags, UserPath: auth.ProfilePath(home)}
	if prof != nil {
		in.User = settings.Values{Gateway: prof.Gateway, Issuer: prof.Issuer, ClientID: prof.ClientID}
	}
	s, err := settings.Resolve(in)
	var le *settings.LockedError
	if errors.As(err, &le) {
		return nil, usageError{err}
	}
	return s, err
}

// resolveGateway returns the gateway URL for this run: the --gateway flag,
// the user's profile, the managed file, or the built-in default, except
// that a gateway the managed file locks always wins (and a different
// --gateway is a usage error). It replaces gatewayURL(flag, prof).
func resolveGateway(f *Factory, flag string, prof *auth.Profile) (string, error) {
	flag, err := normalizeGateway(flag)
	if err != nil {
		return "", err
	}
	home, _ := f.Home()
	s, err := resolveSettings(managedConfigPath(f), builtInSettings(), home, prof, settings.Values{Gateway: flag})
	if err != nil {
		return "", err
	}
	if gw := s.Get(settings.Gateway).Value; gw != "" {
		return strings.TrimRight(gw, "/"), nil
	}
	return "", fmt.Errorf("%w: no gateway configured: run `bridge login --gateway URL`", auth.ErrNotLoggedIn)
}
