package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/buildgate/buildgate/internal/image"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

func tokenCommand() *ffcli.Command {
	fs := flag.NewFlagSet("gate token create", flag.ContinueOnError)
	data := fs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	name := fs.String("name", "", "a name for the token (required)")
	role := fs.String("role", string(image.RoleCI), "role: admin or ci")
	create := &ffcli.Command{
		Name: "create", ShortUsage: "gate token create --name N --role admin|ci --data DIR", ShortHelp: "create an API token and print it",
		FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *name == "" {
				return fmt.Errorf("--name is required")
			}
			r := image.Role(*role)
			if r != image.RoleAdmin && r != image.RoleCI {
				return fmt.Errorf("invalid --role %q: want admin or ci", *role)
			}
			db, err := sqlite.Open(ctx, filepath.Join(*data, "buildgate.db"))
			if err != nil {
				return err
			}
			defer db.Close()
			secret, hash := server.NewToken()
			if err := db.CreateToken(ctx, image.Token{ID: newID(), Name: *name, Role: r, CreatedAt: time.Now().UTC()}, hash); err != nil {
				return err
			}
			fmt.Println(secret)
			return nil
		},
	}
	return &ffcli.Command{
		Name: "token", ShortUsage: "gate token create [flags]", ShortHelp: "manage API tokens",
		Subcommands: []*ffcli.Command{create},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}
