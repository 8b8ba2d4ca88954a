package main

import (
	"io"
	"net/http"
	"os"
	"time"

	"github.com/pkg/browser"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Factory holds what commands need from the outside world, so that tests
// can replace every piece.
type Factory struct {
	IO          IOStreams
	Getenv      func(string) string
	LookupEnv   func(string) (string, bool)
	Now         func() time.Time
	HTTPClient  func() *http.Client
	Keyring     auth.Keyring
	OpenBrowser func(url string) error
	Executable  func() (string, error)
}

func newFactory() *Factory {
	return &Factory{
		IO:        IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Getenv:    os.Getenv,
		LookupEnv: os.LookupEnv,
		Now:       time.Now,
		HTTPClient: func() *http.Client {
			return &http.Client{Transport: pooledTransport(), CheckRedirect: sameHostRedirects}
		},
		Keyring: auth.SystemKeyring(),
		OpenBrowser: func(url string) error {
			// pkg/browser writes the browser's own output to these.
			browser.Stdout, browser.Stderr = io.Discard, io.Discard
			return browser.OpenURL(url)
		},
		Executable: os.Executable,
	}
}

// maxIdleConnsPerHost is how many idle connections to one gateway are kept
// for reuse. An agent may have many requests in flight on one `bridge
// connect`; with net/http's default of 2, every request beyond the second
// dialed a new connection and left it in TIME_WAIT.
const maxIdleConnsPerHost = 64

// pooledTransport is net/http's default transport keeping more idle
// connections per host.
func pooledTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	return t
}

// sameHostRedirects refuses redirects to another host, so credentials set
// on a request never follow a redirect elsewhere.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return http.ErrUseLastResponse
	}
	if req.URL.Host != via[0].URL.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

// Home returns the client's home directory (BRIDGE_HOME or the OS default).
func (f *Factory) Home() (string, error) { return auth.DefaultHome(f.Getenv) }
