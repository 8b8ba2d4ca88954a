package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	cfg, err := Load("gateway.yaml", []byte(minimal), testEnv(map[string]string{"WAREHOUSE_TOKEN": "x"}, map[string]string{"/run/secrets/github": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{
		MaxMessageBytes: 8 << 20, SessionIdleTimeout: 30 * time.Minute,
		SessionsPerUser: 16, Sessions: 512, ProcessesPerUser: 8, Processes: 64, StreamsPerUser: 64, Streams: 2048,
		StatelessPoolPerUser: 2, StatelessIdleTimeout: 2 * time.Minute,
		HeaderReadTimeout: 10 * time.Second, BodyReadTimeout: 30 * time.Second,
		ConnectionIdleTimeout: 2 * time.Minute, StreamIdleTimeout: 10 * time.Minute,
	}
	if cfg.Limits != want {
		t.Errorf("defaults = %+v\nwant       %+v", cfg.Limits, want)
	}
}

func TestLimitsValidation(t *testing.T) {
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "x"}, map[string]string{"/run/secrets/github": "y"})
	cases := []struct {
		limits string
		want   string // "" for valid
	}{
		{"{sessions_per_user: 4, sessions: 10, processes_per_user: 1, processes: 1}", ""},
		{"{stateless_pool_per_user: -1}", "limits.stateless_pool_per_user: must be between 0 and 64"},
		{"{sessions_per_user: 20, sessions: 10}", "limits.sessions_per_user: is 20, more than limits.sessions (10)"},
		{"{processes: -1}", "limits.processes: must be between 1 and 65536"},
		{"{streams_per_user: 5000}", "limits.streams_per_user: is 5000, more than limits.streams (2048)"},
		{"{body_read_timeout: 10ms}", "limits.body_read_timeout: must be between 100ms and 10m0s"},
		{"{header_read_timeout: 1h}", "limits.header_read_timeout: must be between"},
		{"{stream_idle_timeout: -1s}", "limits.stream_idle_timeout: must be between"},
		{"{max_message_bytes: 10}", "limits.max_message_bytes: must be between 1024 and 67108864"},
		{"{sesions: 3}", `limits.sesions: unknown key: did you mean sessions?`},
	}
	for _, tc := range cases {
		t.Run(tc.limits, func(t *testing.T) {
			_, err := Load("gateway.yaml", []byte(minimal+"limits: "+tc.limits+"\n"), env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid limits refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
