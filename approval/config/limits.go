package config

import "time"

// Limits bound what one client can make the gateway do. Every field has a
// safe default; counts are per user (the token's subject) and in total
// across every upstream server of the gateway.
type Limits struct {
	// MaxMessageBytes bounds one JSON-RPC message (default 8 MiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// SessionIdleTimeout ends sessions nobody used for this long (default 30m).
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`

	// SessionsPerUser and Sessions bound open MCP sessions (defaults 16
	// and 512).
	SessionsPerUser int `yaml:"sessions_per_user"`
	Sessions        int `yaml:"sessions"`
	// ProcessesPerUser and Processes bound running stdio upstream
	// processes (defaults 8 and 64): each is a whole program, often tens
	// of MiB.
	ProcessesPerUser int `yaml:"processes_per_user"`
	Processes        int `yaml:"processes"`
	// StreamsPerUser and Streams bound open HTTP streams: POSTs awaiting
	// their answers and GET or SSE event streams (defaults 64 and 2048).
	StreamsPerUser int `yaml:"streams_per_user"`
	Streams        int `yaml:"streams"`
	// StatelessPoolPerUser is how many idle upstreams the 2026-07-28
	// session-less path keeps per user and server for the next request
	// (default 2); a request finds one there instead of starting a process.
	StatelessPoolPerUser int `yaml:"stateless_pool_per_user"`
	// StatelessIdleTimeout ends a pooled idle upstream (default 2m).
	StatelessIdleTimeout time.Duration `yaml:"stateless_idle_timeout"`

	// HeaderReadTimeout bounds reading a request's headers (default 10s).
	HeaderReadTimeout time.Duration `yaml:"header_read_timeout"`
	// BodyReadTimeout bounds reading a request's body (default 30s), so a
	// client trickling a body holds no connection for long.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// ConnectionIdleTimeout closes a keep-alive connection with no request
	// (default 2m).
	ConnectionIdleTimeout time.Duration `yaml:"connection_idle_timeout"`
	// StreamIdleTimeout ends a GET or SSE event stream that carried no
	// message for this long (default 10m); clients reopen it.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`
}

// Default limits.
const (
	DefaultSessionsPerUser       = 16
	DefaultSessions              = 512
	DefaultProcessesPerUser      = 8
	DefaultProcesses             = 64
	DefaultStreamsPerUser        = 64
	DefaultStreams               = 2048
	DefaultStatelessPoolPerUser  = 2
	DefaultStatelessIdleTimeout  = 2 * time.Minute
	DefaultHeaderReadTimeout     = 10 * time.Second
	DefaultBodyReadTimeout       = 30 * time.Second
	DefaultConnectionIdleTimeout = 2 * time.Minute
	DefaultStreamIdleTimeout     = 10 * time.Minute
)

func (c *Limits) defaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.MaxMessageBytes, 8<<20)
	setDur(&c.SessionIdleTimeout, 30*time.Minute)
	setInt(&c.SessionsPerUser, DefaultSessionsPerUser)
	setInt(&c.Sessions, DefaultSessions)
	setInt(&c.ProcessesPerUser, DefaultProcessesPerUser)
	setInt(&c.Processes, DefaultProcesses)
	setInt(&c.StreamsPerUser, DefaultStreamsPerUser)
	setInt(&c.Streams, DefaultStreams)
	setInt(&c.StatelessPoolPerUser, DefaultStatelessPoolPerUser)
	setDur(&c.StatelessIdleTimeout, DefaultStatelessIdleTimeout)
	setDur(&c.HeaderReadTimeout, DefaultHeaderReadTimeout)
	setDur(&c.BodyReadTimeout, DefaultBodyReadTimeout)
	setDur(&c.ConnectionIdleTimeout, DefaultConnectionIdleTimeout)
	setDur(&c.StreamIdleTimeout, DefaultStreamIdleTimeout)
}

// validate reports every limit out of range. A per-user count may not
// exceed its total, which would make it meaningless.
func (c *Limits) validate(errorf func(path, format string, args ...any)) {
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 64<<20 {
		errorf("limits.max_message_bytes", "must be between 1024 and 67108864")
	}
	pairs := []struct {
		user, total         string
		perUser, overall, n int
	}{
		{"sessions_per_user", "sessions", c.SessionsPerUser, c.Sessions, 1 << 20},
		{"processes_per_user", "processes", c.ProcessesPerUser, c.Processes, 1 << 16},
		{"streams_per_user", "streams", c.StreamsPerUser, c.Streams, 1 << 20},
	}
	for _, p := range pairs {
		if p.perUser < 1 || p.perUser > p.n {
			errorf("limits."+p.user, "must be between 1 and %d", p.n)
		}
		if p.overall < 1 || p.overall > p.n {
			errorf("limits."+p.total, "must be between 1 and %d", p.n)
		}
		if p.perUser > p.overall {
			errorf("limits."+p.user, "is %d, more than limits.%s (%d)", p.perUser, p.total, p.overall)
		}
	}
	if c.StatelessPoolPerUser < 0 || c.StatelessPoolPerUser > 64 {
		errorf("limits.stateless_pool_per_user", "must be between 0 and 64")
	}
	durations := []struct {
		name     string
		d        time.Duration
		min, max time.Duration
	}{
		{"session_idle_timeout", c.SessionIdleTimeout, time.Second, 7 * 24 * time.Hour},
		{"stateless_idle_timeout", c.StatelessIdleTimeout, time.Second, 24 * time.Hour},
		{"header_read_timeout", c.HeaderReadTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"body_read_timeout", c.BodyReadTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"connection_idle_timeout", c.ConnectionIdleTimeout, time.Second, 24 * time.Hour},
		{"stream_idle_timeout", c.StreamIdleTimeout, time.Second, 24 * time.Hour},
	}
	for _, d := range durations {
		if d.d < d.min || d.d > d.max {
			errorf("limits."+d.name, "must be between %s and %s", d.min, d.max)
		}
	}
}
