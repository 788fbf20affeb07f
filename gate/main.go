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

	"github.com/buildgate/buildgate/internal/buildinfo"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// version is the stamped release version (internal/buildinfo).
var version = buildinfo.Version

func main() {
	privateUmask()
	os.Exit(cli(os.Args[1:]))
}

// cli runs the command line until it ends or SIGINT or SIGTERM asks it
// to stop, and returns the exit code.
func cli(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gate:", err)
		}
		return 2
	}
	return 0
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
	printVersion := func(context.Context, []string) error { fmt.Println(buildinfo.String("gate")); return nil }
	rootFlags := flag.NewFlagSet("gate", flag.ContinueOnError)
	showVersion := rootFlags.Bool("version", false, "print the version, commit and build date")
	root := &ffcli.Command{
		Name:       "gate",
		ShortUsage: "gate <serve|db|token|secrets|version> [flags]",
		ShortHelp:  "buildgate's server",
		FlagSet:    rootFlags,
		Subcommands: []*ffcli.Command{
			serveCommand(), dbCommand(), tokenCommand(), secretsCommand(), storeCommand(),
			{
				Name: "version", ShortUsage: "gate version", ShortHelp: "print the version, commit and build date",
				Exec: printVersion,
			},
		},
		Exec: func(ctx context.Context, args []string) error {
			if *showVersion {
				return printVersion(ctx, args)
			}
			return flag.ErrHelp
		},
	}
	return root.ParseAndRun(ctx, args)
}
