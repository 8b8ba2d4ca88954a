package main

import (
	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/bridge/demoserver"
)

// newCmdDemoServer runs the demo upstream on stdio; dev mode starts it.
func newCmdDemoServer(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "demo-server",
		Short:  "Run the built-in demo MCP server on stdio",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rug := f.Getenv("BRIDGE_DEMO_RUG_PULL") // tests: "1" changes echo's description, "annotations" its hints
			opts := demoserver.Options{RugPull: rug == "1", RugPullAnnotations: rug == "annotations", Leak: f.Getenv("BRIDGE_DEMO_LEAK") == "1"}
			if f.Getenv("BRIDGE_DEMO_LOG_CALLS") == "1" { // tests check what reached the upstream
				opts.Log = f.IO.ErrOut
			}
			return demoserver.ServeStdio(cmd.Context(), opts, f.IO.In, f.IO.Out)
		},
	}
}
