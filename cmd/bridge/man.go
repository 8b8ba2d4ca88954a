package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// ManOptions are the flags of the hidden `bridge man`.
type ManOptions struct {
	F   *Factory
	Dir string
	// Root is the command tree to document.
	Root *cobra.Command
}

// NewCmdMan builds `bridge man --dir DIR`, which writes one man page per
// command (bridge.1, bridge-login.1, …). Release builds run it; it is
// hidden from help.
func NewCmdMan(f *Factory, runF func(context.Context, *ManOptions) error) *cobra.Command {
	opts := &ManOptions{F: f}
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "Write man pages for every command",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Root = cmd.Root()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return manRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "the directory to write the pages to (created if missing)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func manRun(opts *ManOptions) error {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	// Reproducible pages: the date is SOURCE_DATE_EPOCH when the build
	// sets it (goreleaser does, from the commit), else today.
	date := opts.F.Now().UTC()
	if s := opts.F.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return usageError{fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", s)}
		}
		date = time.Unix(sec, 0).UTC()
	}
	opts.Root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Title: "BRIDGE", Section: "1", Date: &date, Source: "bridge " + version, Manual: "bridge manual"}
	if err := doc.GenManTree(opts.Root, hdr, opts.Dir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	fmt.Fprintf(opts.F.IO.ErrOut, "Wrote man pages to %s.\n", opts.Dir)
	return nil
}
