package step

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/buildgate/buildgate/internal/api"
)

// RegistryAuth are pull credentials the gate uses for this one submission,
// for the image's registry only; the gate never stores them.
type RegistryAuth struct {
	Username string
	Password Token
}

// registryAuthValue is the --registry-auth flag: USER:PASSWORD.
type registryAuthValue RegistryAuth

func (v *registryAuthValue) String() string {
	if v == nil || v.Username == "" {
		return ""
	}
	return v.Username + ":" + redacted
}

func (v *registryAuthValue) Set(s string) error {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return fmt.Errorf("want USER:PASSWORD (or USER:TOKEN)")
	}
	*v = registryAuthValue{Username: user, Password: Token(pass)}
	return nil
}

// RegistryHost returns the registry "host[:port]" of an image reference as
// docker does: the first path component when it has a "." or ":" or is
// localhost, else docker.io.
func RegistryHost(ref string) string {
	if first, _, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// dockerConfigDir is $DOCKER_CONFIG, else ~/.docker; "" when neither is
// known.
func dockerConfigDir(getenv func(string) string) string {
	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".docker")
	}
	return ""
}

// DockerConfigAuth returns the credentials the docker config file in dir
// (config.json) holds for host ("auths" entries only: credential helpers
// are not run); ok is false when it holds none.
func DockerConfigAuth(dir, host string) (RegistryAuth, bool, error) {
	if dir == "" {
		return RegistryAuth{}, false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if os.IsNotExist(err) {
		return RegistryAuth{}, false, nil
	}
	if err != nil {
		return RegistryAuth{}, false, fmt.Errorf("reading the docker config: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return RegistryAuth{}, false, fmt.Errorf("the docker config %s is not JSON: %v", filepath.Join(dir, "config.json"), err)
	}
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" {
		keys = append(keys, "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io")
	}
	for _, k := range keys {
		e, ok := cfg.Auths[k]
		if !ok {
			continue
		}
		user, pass := e.Username, e.Password
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return RegistryAuth{}, false, fmt.Errorf("the docker config's auth for %s is not base64", k)
			}
			user, pass, _ = strings.Cut(string(raw), ":")
		}
		if user != "" && pass != "" {
			return RegistryAuth{Username: user, Password: Token(pass)}, true, nil
		}
	}
	return RegistryAuth{}, false, nil
}

// registryAuth returns the credentials of a registry image's submission
// and where they come from: --registry-auth, else the CI's default for
// the image's registry (RegistryAuthDefaults), else the docker config's;
// none for other sources.
func (c *Config) registryAuth() (RegistryAuth, string, error) {
	src, err := parseSource(c.Image)
	if c.SBOM != "" || err != nil || src.local() {
		return RegistryAuth{}, "", nil
	}
	if c.RegistryAuth.Username != "" {
		return c.RegistryAuth, "--registry-auth", nil
	}
	host := RegistryHost(src.arg)
	if a, ok := c.RegistryAuthDefaults[host]; ok && a.Username != "" && a.Password != "" {
		return a, "the CI job", nil
	}
	a, ok, err := DockerConfigAuth(c.DockerConfig, host)
	if err != nil || !ok {
		return RegistryAuth{}, "", err
	}
	return a, "the docker config " + filepath.Join(c.DockerConfig, "config.json"), nil
}

// wire is the credentials as the submission carries them, nil when none.
func (a RegistryAuth) wire() *api.RegistryAuth {
	if a.Username == "" {
		return nil
	}
	return &api.RegistryAuth{Username: a.Username, Password: string(a.Password)}
}
