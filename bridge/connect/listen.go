package connect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// ListenHandler serves the relay on loopback for agents that speak HTTP:
// Streamable HTTP at /mcp and the legacy HTTP+SSE transport at /sse (with
// messages posted to /message). Each agent session gets its own gateway
// session. Requests whose Host or Origin is not this loopback listener are
// refused, which defeats DNS rebinding, and so are requests that do not
// present secret (see NewSecret), which keeps other local processes and
// users from acting as the developer.
func ListenHandler(opts Options, port, secret string) (http.Handler, func(), error) {
	if _, err := opts.Endpoint(); err != nil {
		return nil, nil, err
	}
	if len(secret) < 16 {
		return nil, nil, errors.New("bridge connect: the listener needs a secret of at least 16 characters")
	}
	srv, err := bridge.NewServer(bridge.ServerOptions{
		Server: opts.Server,
		Dial: func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
			return Dial(opts)
		},
		MaxMessageBytes: opts.MaxMessageBytes,
		Logger:          opts.Logger,
		IdleTimeout:     time.Hour,
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv)
	messagePath := "/message?" + url.Values{SecretParam: {secret}}.Encode()
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) { srv.ServeSSE(w, r, messagePath) })
	mux.HandleFunc("/message", srv.ServeSSEMessage)
	return localOnly(port, requireSecret(secret, mux)), srv.Close, nil
}

// localOnly refuses requests whose Host is not a loopback name with our
// port, and browser requests from any origin but such a host.
func localOnly(port string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHostPort(r.Host, port) {
			http.Error(w, "bridge: refused: Host is not this loopback listener", http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !loopbackHostPort(u.Host, port) {
				http.Error(w, "bridge: refused: cross-origin request", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHostPort(hostport, port string) bool {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	return p == port && isLoopback(strings.Trim(host, "[]"))
}

// Listen serves ListenHandler on addr, which must be a loopback address,
// until ctx ends, with a fresh secret. ready, if not nil, is called with the
// bound address and the secret, which the caller shows to the developer.
func Listen(ctx context.Context, opts Options, addr string, ready func(addr net.Addr, secret string)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want 127.0.0.1:PORT", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: bridge connect only listens on loopback (127.0.0.1 or [::1])", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	secret, err := NewSecret()
	if err != nil {
		ln.Close()
		return err
	}
	h, closeAll, err := ListenHandler(opts, port, secret)
	if err != nil {
		ln.Close()
		return err
	}
	defer closeAll()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr(), secret)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
