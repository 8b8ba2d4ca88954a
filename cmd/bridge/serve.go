package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/devmode"
	"github.com/seed-3f9f6f16/bridge/approval/gateway"
)

// ServeOptions are the flags and dependencies of `bridge serve`.
type ServeOptions struct {
	F         *Factory
	Config    string
	Dev       bool
	Listen    string
	DevUser   string
	DevGroups []string
	LogLevel  string
	// WithClient runs a demo client against the dev gateway once it is up.
	WithClient bool
}

// NewCmdServe builds `bridge serve`.
func NewCmdServe(f *Factory, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{F: f}
	cmd := &cobra.Command{
		Use:   "serve (--config gateway.yaml | --dev)",
		Short: "Run the gateway",
		Long: `Run the central gateway. --config loads the YAML configuration (reloaded on
SIGHUP). --dev runs a self-contained development gateway on loopback with a
built-in identity provider, the demo upstream and a sample policy.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Dev == (opts.Config != "") {
				return usageError{fmt.Errorf("pass exactly one of --config FILE and --dev")}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Config, "config", "", "the gateway's YAML configuration")
	cmd.Flags().BoolVar(&opts.Dev, "dev", false, "run a development gateway on loopback (not for production)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "listen address (overrides the configuration; dev default 127.0.0.1:8787)")
	cmd.Flags().StringVar(&opts.DevUser, "dev-user", "dev@example.com", "dev mode: the user logins approve as")
	cmd.Flags().StringSliceVar(&opts.DevGroups, "dev-groups", []string{"engineering"}, "dev mode: the dev user's groups")
	cmd.Flags().StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().BoolVar(&opts.WithClient, "with-client", false, "dev mode: also run a connected demo client that logs in and makes a few calls")
	return cmd
}

func serveRun(ctx context.Context, opts *ServeOptions) error {
	f := opts.F
	log, err := newLogger(f, opts.LogLevel, true)
	if err != nil {
		return err
	}
	reloads := make(chan struct{}, 1)
	sighup := make(chan os.Signal, 1)
	signal.Notify(sighup, syscall.SIGHUP)
	defer signal.Stop(sighup)
	go func() {
		for range sighup {
			select {
			case reloads <- struct{}{}:
			default:
			}
		}
	}()
	so := gateway.ServeOptions{Logger: log, ReloadRequests: reloads, HTTPClient: f.HTTPClient()}

	if opts.Dev {
		addr := opts.Listen
		if addr == "" {
			addr = "127.0.0.1:8787"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("dev mode: listen on %s: %w (pass --listen 127.0.0.1:PORT)", addr, err)
		}
		self, err := f.Executable()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "bridge-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env, err := devmode.New(devmode.Options{Listener: ln, User: opts.DevUser, Groups: opts.DevGroups, Self: self, DataDir: dir, Now: f.Now})
		if err != nil {
			ln.Close()
			return err
		}
		so.Config, so.Listener, so.Mount = env.Config, ln, env.Mount
		so.Ready = func(string) {
			env.PrintNextSteps(f.IO.ErrOut, self)
			if opts.WithClient {
				go func() {
					dc := &devmode.DemoClient{Self: self, Gateway: env.URL, Out: f.IO.ErrOut}
					if err := dc.Run(ctx); err != nil {
						fmt.Fprintf(f.IO.ErrOut, "client: %v\n", err)
					}
				}()
			}
		}
		return gateway.Serve(ctx, so)
	}

	load := func() (*config.Config, error) {
		cfg, err := config.LoadFile(opts.Config, config.OSEnv())
		if err != nil {
			return nil, err
		}
		if opts.Listen != "" {
			cfg.Listen = opts.Listen
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("the configuration is invalid, not starting:\n%s", indent(err.Error()))
	}
	so.Config, so.Reload = cfg, load
	// Edits to the file reload it too, like SIGHUP.
	go gateway.WatchFile(ctx, opts.Config, 2*time.Second, reloads)
	return gateway.Serve(ctx, so)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
