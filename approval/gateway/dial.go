package gateway

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"sort"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// baseEnvNames are the variables a stdio upstream inherits from the
// gateway: what programs need to run, nothing that carries a secret.
var baseEnvNames = []string{
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
	"SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP", "USERPROFILE",
	"APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES", "SYSTEMDRIVE",
}

// DefaultBaseEnv returns the base environment for stdio upstreams.
func DefaultBaseEnv() []string {
	var env []string
	for _, name := range baseEnvNames {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// dialer opens the upstream of a new session for one configured server.
// A stdio upstream takes a unit of processes until it is closed; every
// upstream answers each request within the server's timeout.
func dialer(name string, sc *config.Server, opts Options, processes *bridge.Budget) func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
	dial := transportDialer(name, sc, opts, processes)
	if sc.Timeout <= 0 {
		return dial
	}
	return func(ctx context.Context, si *bridge.SessionInfo) (bridge.Conn, error) {
		c, err := dial(ctx, si)
		if err != nil {
			return nil, err
		}
		return newTimeoutConn(c, name, sc.Timeout, nil), nil
	}
}

// transportDialer opens the upstream's transport.
func transportDialer(name string, sc *config.Server, opts Options, processes *bridge.Budget) func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
	log := opts.Logger.With("server", name)
	headers := func(_ context.Context, h http.Header) error {
		for k, v := range sc.ResolvedHeaders {
			h.Set(k, v.Reveal())
		}
		return nil
	}
	max := opts.Config.Limits.MaxMessageBytes
	switch sc.Transport {
	case "stdio":
		return func(ctx context.Context, info *bridge.SessionInfo) (bridge.Conn, error) {
			release, err := processes.Acquire(info.Owner)
			if err != nil {
				return nil, err
			}
			conn, err := bridge.Command{
				Path: sc.Command, Args: sc.Args, Dir: sc.Dir, Env: stdioEnv(opts.BaseEnv, sc),
				MaxMessageBytes: max, Logger: log, Redact: secretValues(sc),
			}.Start(ctx)
			if err != nil {
				release()
				return nil, err
			}
			return &budgetConn{Conn: conn, release: release}, nil
		}
	case "sse":
		return func(ctx context.Context, _ *bridge.SessionInfo) (bridge.Conn, error) {
			return bridge.DialSSE(ctx, bridge.SSEClientOptions{
				URL: sc.ResolvedURL.Reveal(), HTTPClient: opts.HTTPClient, Header: headers, MaxMessageBytes: max, Logger: log,
			})
		}
	default: // http
		return func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
			return bridge.NewClient(bridge.ClientOptions{
				URL: sc.ResolvedURL.Reveal(), HTTPClient: opts.HTTPClient, Header: headers, Reinitialize: true,
				Name: "the upstream MCP server " + name, MaxMessageBytes: max, Logger: log,
			})
		}
	}
}

// stdioEnv is the base environment plus the server's configured variables,
// which win.
func stdioEnv(base []string, sc *config.Server) []string {
	env := append([]string(nil), base...)
	keys := make([]string, 0, len(sc.ResolvedEnv))
	for k := range sc.ResolvedEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+sc.ResolvedEnv[k].Reveal())
	}
	if runtime.GOOS == "windows" && len(env) == 0 {
		env = append(env, "SYSTEMROOT="+os.Getenv("SYSTEMROOT"))
	}
	return env
}

// secretValues are the server's configured env values and the secrets
// expanded into its args, which the gateway keeps out of its log even if
// the server prints them.
func secretValues(sc *config.Server) []string {
	var out []string
	for _, v := range sc.ResolvedEnv {
		out = append(out, v.Reveal())
	}
	for _, v := range sc.ArgSecrets {
		out = append(out, v.Reveal())
	}
	return out
}
