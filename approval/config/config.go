// Package config loads and validates the gateway's YAML configuration.
//
// Load reports every problem at once, each naming the file, the line and
// the field path: unknown keys (with the nearest known one), keys given
// twice, values of the wrong YAML kind (a bare number where a duration such
// as 50s belongs), YAML anchors, aliases and tags, and every invalid value. Secrets enter only through
// ${env:NAME} and ${file:PATH}, are expanded at load, and are held as
// auth.Secret values that never print.
package config

import (
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// Config is the whole gateway configuration. The YAML format is documented
// in docs/configuration.md; Example is an annotated sample.
type Config struct {
	// Listen is the address the gateway listens on.
	Listen string `yaml:"listen"`
	// PublicURL is the gateway's URL as clients see it.
	PublicURL string             `yaml:"public_url"`
	TLS       *TLS               `yaml:"tls"`
	Identity  Identity           `yaml:"identity"`
	Storage   Storage            `yaml:"storage"`
	Servers   map[string]*Server `yaml:"servers"`
	Policy    policy.Config      `yaml:"policy"`
	Masking   mask.Config        `yaml:"masking"`
	Audit     audit.Config       `yaml:"audit"`
	Notify    []Notify           `yaml:"notify"`
	Limits    Limits             `yaml:"limits"`
	Pinning   Pinning            `yaml:"tool_pinning"`
	Approvals Approvals          `yaml:"approvals"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`
	// CompiledPolicy and Masks are the compiled policy and masking
	// sections, ready to use.
	CompiledPolicy *policy.Policy `yaml:"-"`
	Masks          *mask.Set      `yaml:"-"`
	// Warnings are problems that do not stop the configuration from
	// loading but are probably mistakes, such as a policy rule naming a
	// method one typo away from a known one. `bridge policy check` prints
	// them and the gateway logs them at start.
	Warnings []*Error `yaml:"-"`
}

// TLS names the gateway's certificate and key files.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Identity configures token verification and what `bridge login` uses.
type Identity struct {
	Issuer      string        `yaml:"issuer"`
	Audience    string        `yaml:"audience"`
	ClientID    string        `yaml:"client_id"`
	Scopes      []string      `yaml:"scopes"`
	GroupsClaim string        `yaml:"groups_claim"`
	ClockSkew   time.Duration `yaml:"clock_skew"`
}

// Storage configures the gateway's database.
type Storage struct {
	Driver string `yaml:"driver"`
	Path   string `yaml:"path"`
}

// DefaultUpstreamTimeout is how long an upstream may take to answer one
// request when its timeout is not set: long enough for slow tools, short
// enough that a hung server does not hold a call for ever.
const DefaultUpstreamTimeout = 10 * time.Minute

// Server is one upstream MCP server.
type Server struct {
	// Transport is stdio, http (Streamable HTTP) or sse (legacy HTTP+SSE).
	Transport string            `yaml:"transport"`
	Command   string            `yaml:"command"`
	Args      []string          `yaml:"args"`
	Dir       string            `yaml:"dir"`
	Env       map[string]string `yaml:"env"`
	URL       string            `yaml:"url"`
	Headers   map[string]string `yaml:"headers"`
	// Mask names the masking profile for this server's responses.
	Mask string `yaml:"mask"`
	// Timeout bounds how long the server may take to answer one request
	// (default DefaultUpstreamTimeout); then the call gets an error and
	// the server is told the request is cancelled.
	Timeout time.Duration `yaml:"timeout"`

	// ResolvedEnv and ResolvedHeaders hold the expanded values.
	ResolvedEnv     map[string]auth.Secret `yaml:"-"`
	ResolvedHeaders map[string]auth.Secret `yaml:"-"`
	ResolvedURL     auth.Secret            `yaml:"-"`
	// ArgSecrets are the values ${env:} and ${file:} put into Args: the
	// gateway keeps them out of its log if the server prints its
	// command line, as it does the values of Env.
	ArgSecrets []auth.Secret `yaml:"-"`
}

// Notify is one notification target for approval events.
type Notify struct {
	Type       string `yaml:"type"`
	URL        string `yaml:"url"`
	WebhookURL string `yaml:"webhook_url"`
	Secret     string `yaml:"secret"`

	ResolvedURL    auth.Secret `yaml:"-"`
	ResolvedSecret auth.Secret `yaml:"-"`
}

// Pinning configures tool pinning: what happens when an upstream tool's
// definition changes after the gateway first saw it.
type Pinning struct {
	// Disabled turns pinning off.
	Disabled bool `yaml:"disabled"`
	// Approvers are the groups that may approve a call to a changed tool;
	// with none, such calls are refused until the change is accepted.
	Approvers []string `yaml:"approvers"`
	// Admins are the groups that may list pins and accept changes.
	Admins []string `yaml:"admins"`
}
