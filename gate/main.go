// Command gate is buildgate's server: it stores policies, credentials,
// images, SBOMs and verdicts, analyses images with syft and grype, and
// serves the /v1 API. Subcommands: serve, db, token, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	privateUmask()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gate:", err)
		}
		os.Exit(2)
	}
}

// parseOptions reads flags, then GATE_* environment variables, then an
// optional YAML file named by --config (or GATE_CONFIG).
func parseOptions() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("GATE"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ffyaml.Parser),
	}
}

func run(ctx context.Context, args []string) error {
	root := &ffcli.Command{
		Name:       "gate",
		ShortUsage: "gate <serve|db|token|version> [flags]",
		ShortHelp:  "buildgate's server",
		Subcommands: []*ffcli.Command{
			serveCommand(), dbCommand(), tokenCommand(), secretsCommand(), storeCommand(),
			{
				Name: "version", ShortUsage: "gate version", ShortHelp: "print the version",
				Exec: func(context.Context, []string) error { fmt.Println(version); return nil },
			},
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	return root.ParseAndRun(ctx, args)
}
