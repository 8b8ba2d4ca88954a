package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/approval/config"
)

// InitOptions are the flags of `bridge init`.
type InitOptions struct {
	F     *Factory
	Path  string // "" or "-" for standard output
	Force bool
}

// NewCmdInit builds `bridge init`, which writes the annotated starting
// configuration (docs/gateway.example.yaml).
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{F: f}
	cmd := &cobra.Command{
		Use:   "init [FILE | -]",
		Short: "Write an annotated starting gateway configuration",
		Long: `Write an annotated starting configuration for ` + "`bridge serve --config`" + ` to FILE,
or to standard output when FILE is "-" or omitted. An existing file is never
replaced without --force. Every key is described in docs/configuration.md.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("init takes at most one FILE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Path = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return initRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace FILE if it exists")
	return cmd
}

func initRun(opts *InitOptions) error {
	data := config.Example()
	if opts.Path == "" || opts.Path == "-" {
		_, err := opts.F.IO.Out.Write(data)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if opts.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	// 0600: the file will name secrets' sources and often hold others.
	file, err := os.OpenFile(opts.Path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: pass --force to replace it", opts.Path)
	}
	if err != nil {
		return err
	}
	if _, err := file.Write(data); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(opts.F.IO.ErrOut, "Wrote %s. Edit it, set %s, then run:\n  bridge policy check --config %s\n",
		opts.Path, strings.Join(config.ExampleEnv(), ", "), opts.Path)
	return nil
}
