package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs the command line and maps errors to exit codes in one place.
func Main(f *Factory) ExitCode {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := NewCmdRoot(f)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(f.IO.ErrOut, "bridge:", err)
	return exitCodeFor(err)
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "bridge",
		Short: "Approval gate, masking and audit between AI agents and MCP servers",
		Long: `bridge relays an agent's MCP traffic through a central gateway that verifies
the user's Okta identity, applies policy, holds risky calls for human approval,
masks sensitive data and keeps a tamper-evident audit log.

` + exitCodesHelp(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		NewCmdLogin(f, nil),
		NewCmdLogout(f, nil),
		NewCmdStatus(f, nil),
		NewCmdConnect(f, nil),
		NewCmdServe(f, nil),
		NewCmdInit(f, nil),
		NewCmdVersion(f),
		NewCmdPolicy(f, nil, nil),
		NewCmdApprovals(f, nil),
		NewCmdAudit(f, nil),
		NewCmdInstall(f, nil),
		NewCmdUninstall(f, nil),
		NewCmdDoctor(f, nil),
		NewCmdMan(f, nil),
		newCmdDemoServer(f),
	)
	return root
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
