package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
// defaultGateway is an organisation's gateway URL baked into its builds.
var (
	version        = "dev"
	commit         = ""
	date           = ""
	defaultGateway = ""
)

// NewCmdVersion prints the build's version.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commit
			if c == "" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							c = s.Value
						}
					}
				}
			}
			fmt.Fprintf(f.IO.Out, "bridge %s (commit %s, built %s, %s %s/%s)\n", version, orNone(c), orNone(date), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if defaultGateway != "" {
				fmt.Fprintf(f.IO.Out, "gateway: %s (built in)\n", defaultGateway)
			}
			return nil
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
