package step

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistryAuthSources: --registry-auth wins, then the CI's default
// for the image's registry, then the docker config's entry; local images
// and other registries get none; the password never shows.
func TestRegistryAuthSources(t *testing.T) {
	dir := t.TempDir()
	// "auth" is base64 of "dock:dock-pass".
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths": {
		"registry.example": {"auth": "ZG9jazpkb2NrLXBhc3M="},
		"https://index.docker.io/v1/": {"username": "hub", "password": "hub-pass"}}}`), 0o600)
	ci := map[string]RegistryAuth{"ghcr.io": {Username: "actor", Password: "gh-token"}}
	for _, tc := range []struct {
		name, image, flag string
		want              string // "user:password", "" for none
	}{
		{"flag", "registry.example/team/app:1", "me:my-pass", "me:my-pass"},
		{"CI default", "ghcr.io/acme/app:1", "", "actor:gh-token"},
		{"flag over CI default", "ghcr.io/acme/app:1", "me:my-pass", "me:my-pass"},
		{"docker config auth", "registry.example/team/app:1", "", "dock:dock-pass"},
		{"docker config, Docker Hub", "library/debian:12", "", "hub:hub-pass"},
		{"no entry", "quay.io/team/app:1", "", ""},
		{"local image", "docker-archive:/tmp/x.tar", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.RegisterFlags(fs)
			args := []string{"--image", tc.image}
			if tc.flag != "" {
				args = append(args, "--registry-auth", tc.flag)
			}
			env := map[string]string{"DOCKER_CONFIG": dir}
			if err := cfg.ParseFlags(fs, args, func(k string) string { return env[k] }); err != nil {
				t.Fatal(err)
			}
			cfg.RegistryAuthDefaults = ci
			a, from, err := cfg.registryAuth()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if a.Username != "" {
				got = a.Username + ":" + string(a.Password)
			}
			if got != tc.want || (got != "" && from == "") {
				t.Fatalf("credentials %q from %q, want %q", got, from, tc.want)
			}
			if s := fs.Lookup("registry-auth").Value.String(); strings.Contains(s, "my-pass") {
				t.Fatalf("the flag prints its password: %s", s)
			}
		})
	}
}

// TestRegistryAuthRedacted: a run with credentials from the docker config
// never prints the password, even when the gate is down.
func TestRegistryAuthRedacted(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths": {"registry.example": {"username": "u", "password": "SECRET-pass-123"}}}`), 0o600)
	cfg := DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.OutDir = "http://127.0.0.1:1", "tok", t.TempDir()
	cfg.Image = "registry.example/team/app:SECRET-pass-123"
	cfg.DockerConfig = dir
	var out, errw bytes.Buffer
	if code := Run(t.Context(), cfg, &out, &errw); code != ExitError {
		t.Fatalf("exit %d", code)
	}
	if s := out.String() + errw.String(); strings.Contains(s, "SECRET-pass-123") || !strings.Contains(s, `registry credentials of "u"`) {
		t.Fatalf("output:\n%s", s)
	}
}

func TestRegistryAuthFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--registry-auth", "no-colon"},
		{"--registry-auth", ":pass"},
	} {
		cfg := DefaultConfig()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args); err == nil || !strings.Contains(err.Error(), "want USER:PASSWORD") {
			t.Errorf("%q: %v", args, err)
		}
	}
	cfg := DefaultConfig()
	cfg.GateURL, cfg.Token, cfg.Image, cfg.Platform = "http://127.0.0.1:1", "t", "docker-archive:/x.tar", "linux/arm64"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "go with a registry reference") {
		t.Errorf("--platform with an archive: %v", err)
	}
}
