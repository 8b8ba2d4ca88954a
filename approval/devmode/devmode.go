// Package devmode assembles `bridge serve --dev`: a loopback gateway with a
// built-in development identity provider whose device flow approves itself
// as a configurable user, bbolt in a temporary directory, the demo upstream
// built into the binary, and a sample policy that shows allow, deny,
// masking and approval.
package devmode

import (
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
)

//go:embed dev.yaml
var devYAML string

// IssuerPath is where the development identity provider is mounted.
const IssuerPath = "/dev/idp/oauth2/default"

// Options configures dev mode.
type Options struct {
	// Listener is the gateway's loopback listener.
	Listener net.Listener
	// User and Groups are the identity the device flow approves as.
	User   string
	Groups []string
	// Self is this binary's path; the demo upstream runs it as `demo-server`.
	Self string
	// DataDir holds the bbolt database.
	DataDir string
	Now     func() time.Time
}

// Env is the assembled development environment.
type Env struct {
	Config *config.Config
	IdP    *fakeokta.Server
	URL    string
}

// New builds the dev configuration and identity provider.
func New(opts Options) (*Env, error) {
	if opts.Listener == nil || opts.Self == "" || opts.DataDir == "" {
		return nil, fmt.Errorf("devmode: Listener, Self and DataDir are required")
	}
	addr := opts.Listener.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		return nil, fmt.Errorf("dev mode only listens on loopback, not %s", addr)
	}
	base := "http://" + addr.String()
	issuer := base + IssuerPath
	if opts.User == "" {
		opts.User = "dev@example.com"
	}
	users := map[string]fakeokta.User{
		opts.User: {Subject: "dev-" + strings.SplitN(opts.User, "@", 2)[0], Email: opts.User, Name: opts.User, Groups: opts.Groups},
		// A second person, so approvals can be tried without self-approval.
		"reviewer@example.com": {Subject: "dev-reviewer", Email: "reviewer@example.com", Name: "Dev Reviewer", Groups: []string{"security-reviewers"}},
	}
	idp, err := fakeokta.New(fakeokta.Options{
		Issuer: issuer, ClientID: "bridge-dev-cli", Audience: "api://bridge-dev", Users: users,
		AutoApprove: opts.User, AutoApproveOnPoll: true, PollInterval: time.Second, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	// The audit log is always signed: dev mode makes its key (kept if the
	// data directory is reused).
	keyPath := filepath.Join(opts.DataDir, "audit-signing-key.pem")
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		if _, err := audit.WriteNewKey(keyPath, rand.Reader); err != nil {
			return nil, fmt.Errorf("dev mode audit signing key: %w", err)
		}
	}
	r := strings.NewReplacer("{{LISTEN}}", addr.String(), "{{ISSUER}}", issuer, "{{SELF}}", yamlEscape(opts.Self), "{{DATA}}", yamlEscape(opts.DataDir))
	cfg, err := config.Load("dev.yaml (embedded)", []byte(r.Replace(devYAML)), config.OSEnv())
	if err != nil {
		return nil, fmt.Errorf("dev configuration: %w", err)
	}
	return &Env{Config: cfg, IdP: idp, URL: base}, nil
}

// Mount adds the identity provider to the gateway's router.
func (e *Env) Mount(mux *http.ServeMux) {
	mux.Handle("/dev/idp/", e.IdP)
}

// yamlEscape makes a path safe inside a double-quoted YAML string
// (Windows paths have backslashes).
func yamlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// PrintNextSteps tells the user what to run in a second terminal.
func (e *Env) PrintNextSteps(w io.Writer, self string) {
	fmt.Fprintf(w, `
bridge is running in development mode at %[1]s
  identity provider: %[2]s (logins approve themselves)
  upstream:          demo (built in: echo, get_customers, delete_records, slow_count, ...)
  data:              %[3]s (deleted on exit)
  audit log:         signed with %[6]s; verify with
                     %[4]s audit verify --public-key %[6]s.pub

Do not use dev mode in production: it has no real identity provider.

In a second terminal:
  %[4]s login --gateway %[1]s --insecure-storage
  %[4]s connect demo            # what an agent's MCP config runs

or add to an agent's MCP configuration:
  {"mcpServers": {"demo": {"command": %[5]q, "args": ["connect", "demo"]}}}

`, e.URL, e.IdP.Issuer(), e.Config.Storage.Path, self, self, e.Config.Audit.SigningKeyFile)
}
