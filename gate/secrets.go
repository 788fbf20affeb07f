package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

func secretsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("gate secrets rotate", flag.ContinueOnError)
	data := fs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	newKeyFile := fs.String("new-key-file", "", "file with the new key (base64 or hex); written with a new random key when missing (default: generate one)")
	rotate := &ffcli.Command{
		Name: "rotate", ShortUsage: "gate secrets rotate --data DIR [--new-key-file F]",
		ShortHelp: "re-seal every stored secret under a new key, then swap the key file",
		LongHelp: "Stop the gate first. Every sealed secret is opened with the current key (GATE_SECRET_KEY, or\n" +
			"<data>/secret.key) and sealed under the new one in one transaction; then <data>/secret.key is\n" +
			"replaced. When the key comes from GATE_SECRET_KEY, give --new-key-file and set GATE_SECRET_KEY\n" +
			"to the new key before starting the gate.",
		FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			return rotateSecrets(ctx, *data, *newKeyFile, os.Getenv(secret.EnvKey), os.Stdout)
		},
	}
	return &ffcli.Command{
		Name: "secrets", ShortUsage: "gate secrets rotate [flags]", ShortHelp: "manage the key that seals stored secrets",
		Subcommands: []*ffcli.Command{rotate},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// rotateSecrets re-seals every secret in the data directory's store under
// a new key. The new key is written to secret.key.next before the
// transaction and renamed over secret.key after it commits, so a rotation
// cut short at any point leaves every secret openable: the gate opens with
// secret.key.next too, and running the rotation again finishes it.
func rotateSecrets(ctx context.Context, data, newKeyFile, envKey string, out io.Writer) error {
	keyPath := filepath.Join(data, secret.KeyFileName)
	nextPath := filepath.Join(data, secret.NextKeyFileName)
	fromEnv := envKey != ""

	var oldKey []byte
	var err error
	if fromEnv {
		if newKeyFile == "" {
			return fmt.Errorf("the key comes from %s: give --new-key-file F to receive the new key, then set %s to it", secret.EnvKey, secret.EnvKey)
		}
		if oldKey, err = secret.ParseKey(envKey); err != nil {
			return fmt.Errorf("%s: %w", secret.EnvKey, err)
		}
	} else if oldKey, err = secret.ReadKeyFile(keyPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no key to rotate: %s does not exist (the gate creates it on first start) and %s is not set", keyPath, secret.EnvKey)
		}
		return err
	}
	// A secret.key.next left by a rotation cut short may seal some secrets.
	leftover, err := secret.ReadKeyFile(nextPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var older [][]byte
	if leftover != nil {
		older = append(older, leftover)
	}

	newKey := secret.NewKey()
	if newKeyFile != "" {
		k, err := secret.ReadKeyFile(newKeyFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := secret.WriteKeyFile(newKeyFile, newKey); err != nil {
				return fmt.Errorf("writing the new key to %s: %w", newKeyFile, err)
			}
		case err != nil:
			return err
		default:
			newKey = k
		}
	}
	opener, err := secret.NewSealer(oldKey, older...)
	if err != nil {
		return err
	}
	sealer, err := secret.NewSealer(newKey)
	if err != nil {
		return err
	}
	if sealer.KeyID() == opener.KeyID() {
		return fmt.Errorf("the new key is the current key (%s)", sealer.KeyID())
	}

	if !fromEnv {
		if err := secret.WriteKeyFile(nextPath, newKey); err != nil {
			return fmt.Errorf("writing %s: %w", nextPath, err)
		}
	}
	db, err := sqlite.Open(ctx, filepath.Join(data, "buildgate.db"))
	if err != nil {
		return err
	}
	n, err := db.ResealSecrets(ctx, func(sealed string, rec secret.Record) (string, error) {
		return opener.Reseal(sealed, rec, sealer)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if !fromEnv {
			if leftover != nil {
				if werr := secret.WriteKeyFile(nextPath, leftover); werr != nil {
					err = errors.Join(err, fmt.Errorf("restoring %s: %w", nextPath, werr))
				}
			} else {
				os.Remove(nextPath)
			}
		}
		return fmt.Errorf("nothing was re-sealed: %w", err)
	}
	if fromEnv {
		fmt.Fprintf(out, "re-sealed %d secrets under key %s (was %s); set %s to the key in %s before starting the gate\n",
			n, sealer.KeyID(), opener.KeyID(), secret.EnvKey, newKeyFile)
		return nil
	}
	if err := os.Rename(nextPath, keyPath); err != nil {
		return fmt.Errorf("re-sealed %d secrets but could not swap the key file (the gate still opens them with %s): %w", n, nextPath, err)
	}
	fmt.Fprintf(out, "re-sealed %d secrets under key %s (was %s); %s now holds the new key\n", n, sealer.KeyID(), opener.KeyID(), keyPath)
	return nil
}
