package step

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
)

// EnvVars maps each step flag to the environment variable it falls back to.
var EnvVars = map[string]string{
	"gate":          "GATE_URL",
	"token":         "GATE_TOKEN",
	"image":         "GATE_IMAGE",
	"dockerfile":    "GATE_DOCKERFILE",
	"policy":        "GATE_POLICY",
	"tag":           "GATE_TAG",
	"timeout":       "GATE_TIMEOUT",
	"fail-on":       "GATE_FAIL_ON",
	"on-error":      "GATE_ON_ERROR",
	"out":           "GATE_OUT",
	"sbom":          "GATE_SBOM",
	"vex":           "GATE_VEX",
	"platform":      "GATE_PLATFORM",
	"registry-auth": "GATE_REGISTRY_AUTH",
	"baseline":      "GATE_BASELINE",
	"ca-cert":       "GATE_CA_CERT",
}

// RegisterFlags registers the flags every step binary shares on fs,
// writing into c; c's current values are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GateURL, "gate", c.GateURL, "the gate's URL, e.g. https://gate.example ($GATE_URL)")
	fs.Var((*tokenValue)(&c.Token), "token", "API `token`; prefer $GATE_TOKEN, which does not show in process lists")
	fs.StringVar(&c.Image, "image", c.Image, "`image`: a registry reference, docker-archive:PATH, oci-archive:PATH, oci-dir:PATH or docker:NAME ($GATE_IMAGE)")
	fs.StringVar(&c.Dockerfile, "dockerfile", c.Dockerfile, "path of the image's Dockerfile ($GATE_DOCKERFILE)")
	fs.StringVar(&c.Policy, "policy", c.Policy, "policy bundle id; default: the gate's active bundle ($GATE_POLICY)")
	fs.StringVar(&c.Tag, "tag", c.Tag, "REPO:TAG the image stands for in policy mappings ($GATE_TAG)")
	fs.Var((*annotationsValue)(&c.Annotations), "annotation", "`k=v` stored with the image on the gate (repeatable)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "time limit of the whole step ($GATE_TIMEOUT)")
	fs.Var((*failOnValue)(&c.FailOn), "fail-on", "what fails the build: `stop|warn|new|none` (default stop; new: only STOP findings the baseline lacks; none: report only) ($GATE_FAIL_ON)")
	fs.BoolVar(&c.Force, "force", c.Force, "analyse the image again even when the gate has it")
	fs.BoolVar(&c.Subscribe, "subscribe", c.Subscribe, "subscribe the image's tag to tag updates on the gate (needs a token of role admin)")
	fs.StringVar(&c.CACert, "ca-cert", c.CACert, "PEM `file` of CA certificates to trust for the gate, besides the system's ($GATE_CA_CERT)")
	fs.StringVar(&c.Baseline, "baseline", c.Baseline, "compare the findings with `auto|IMAGE|DIGEST|none`: auto is the last image of the pull request's target branch, else the Dockerfile's final FROM image (default none) ($GATE_BASELINE)")
	fs.Var((*onErrorValue)(&c.PassOnError), "on-error", "on an error (gate down, timeout, ...): `fail|pass`, exit 2 or exit 0 (default fail) ($GATE_ON_ERROR)")
	fs.StringVar(&c.OutDir, "out", c.OutDir, "directory for the reports ($GATE_OUT)")
	fs.StringVar(&c.VEX, "vex", c.VEX, "apply this OpenVEX or CycloneDX VEX document (JSON) to this evaluation: not_affected and fixed statements waive findings ($GATE_VEX)")
	fs.StringVar(&c.Platform, "platform", c.Platform, "the image of an index to gate, `os/arch[/variant]` (default linux/amd64) ($GATE_PLATFORM)")
	fs.Var((*registryAuthValue)(&c.RegistryAuth), "registry-auth", "pull credentials `USER:PASSWORD` for this image's registry, this submission only; never stored by the gate (default: the docker config's for that registry) ($GATE_REGISTRY_AUTH)")
	fs.StringVar(&c.SBOM, "sbom", c.SBOM, "evaluate this SBOM file (syft JSON, CycloneDX, SPDX) instead of an image ($GATE_SBOM)")
}

// ParseFlags parses args with fs (on which c.RegisterFlags was called),
// then sets every flag that was not given from its environment variable
// (EnvVars), and reads DOCKER_HOST. An environment value is checked like
// the flag's. Positional arguments are an error.
func (c *Config) ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := SetFromEnv(fs, EnvVars, getenv); err != nil {
		return err
	}
	if c.DockerHost == "" {
		c.DockerHost = getenv("DOCKER_HOST")
	}
	if c.DockerConfig == "" {
		c.DockerConfig = dockerConfigDir(getenv)
	}
	return nil
}

// SetFromEnv sets each flag of fs that was not given on the command line
// and has a non-empty environment variable in vars (flag name to variable
// name), in flag-name order. A value is checked like the flag's; a bad
// token is reported without its value.
func SetFromEnv(fs *flag.FlagSet, vars map[string]string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		env := vars[name]
		v := getenv(env)
		if set[name] || v == "" || fs.Lookup(name) == nil {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			if name == "token" {
				return fmt.Errorf("$%s: invalid value", env)
			}
			return fmt.Errorf("$%s: invalid value %q: %v", env, v, err)
		}
	}
	return nil
}

// AnnotateFromEnv adds an annotation for each variable of vars (variable
// name to annotation key) that is set, unless the annotation was given.
func (c *Config) AnnotateFromEnv(vars map[string]string, getenv func(string) string) {
	for env, key := range vars {
		v := getenv(env)
		if v == "" {
			continue
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		if _, given := c.Annotations[key]; !given {
			c.Annotations[key] = v
		}
	}
}

// Validate checks a configuration before anything is sent.
func (c *Config) Validate() error {
	if c.GateURL == "" {
		return errors.New("--gate (or $GATE_URL) is required")
	}
	u, err := url.Parse(c.GateURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--gate %q: want an http(s) URL such as https://gate.example", redactURL(c.GateURL))
	}
	if c.Token == "" {
		return errors.New("no token: set $GATE_TOKEN (or --token)")
	}
	switch {
	case c.Image == "" && c.SBOM == "":
		return errors.New("--image (or $GATE_IMAGE) or --sbom is required")
	case c.Image != "" && c.SBOM != "":
		return errors.New("--image and --sbom are exclusive: give one")
	}
	if c.Image != "" {
		src, err := parseSource(c.Image)
		if err != nil {
			return err
		}
		if src.local() && (c.Platform != "" || c.RegistryAuth.Username != "") {
			return fmt.Errorf("--platform and --registry-auth go with a registry reference, not %s", src.describe())
		}
	}
	if c.SBOM != "" && (c.Platform != "" || c.RegistryAuth.Username != "") {
		return errors.New("--platform and --registry-auth go with a registry reference, not --sbom")
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", c.Timeout)
	}
	if c.FailOn != policy.ActionStop && c.FailOn != policy.ActionWarn && c.FailOn != report.FailOnNone && c.FailOn != report.FailOnNew {
		return fmt.Errorf("--fail-on %s: want stop, warn, new or none", (*failOnValue)(&c.FailOn))
	}
	if err := validBaseline(c.Baseline); err != nil {
		return err
	}
	if c.OutDir == "" {
		return errors.New("--out is empty")
	}
	return nil
}

// validBaseline checks --baseline: auto, none, a digest or an image
// reference (the gate resolves it; here only its shape is checked).
func validBaseline(b string) error {
	b = strings.TrimSpace(b)
	switch {
	case b == "", b == BaselineAuto, b == BaselineNone, isDigest(b):
		return nil
	case strings.HasPrefix(b, "sha256:"):
		return fmt.Errorf("--baseline %q: a digest is sha256: and 64 lower-case hex digits", b)
	case strings.ContainsAny(b, " \t\n") || strings.Contains(b, "://"):
		return fmt.Errorf("--baseline %q: want auto, none, an image reference (registry/repo:tag) or a digest", b)
	}
	return nil
}

// redactURL drops a URL's user information.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

type tokenValue Token

func (t *tokenValue) String() string { return "" }
func (t *tokenValue) Set(s string) error {
	*t = tokenValue(strings.TrimSpace(s))
	return nil
}

type annotationsValue map[string]string

func (a *annotationsValue) String() string {
	if a == nil || len(*a) == 0 {
		return ""
	}
	keys := make([]string, 0, len(*a))
	for k := range *a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + (*a)[k]
	}
	return strings.Join(parts, ",")
}

func (a *annotationsValue) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if *a == nil {
		*a = map[string]string{}
	}
	(*a)[k] = v
	return nil
}

type failOnValue policy.Action

func (f *failOnValue) String() string {
	switch a := policy.Action(*f); a {
	case policy.ActionStop, policy.ActionWarn, policy.ActionGo:
		return a.String()
	case report.FailOnNone:
		return "none"
	case report.FailOnNew:
		return "new"
	}
	return fmt.Sprintf("invalid(%d)", int(*f))
}

func (f *failOnValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none":
		*f = failOnValue(report.FailOnNone)
		return nil
	case "new":
		*f = failOnValue(report.FailOnNew)
		return nil
	}
	a, err := policy.ParseAction(s)
	if err != nil || a == policy.ActionGo {
		return errors.New("want stop, warn, new or none")
	}
	*f = failOnValue(a)
	return nil
}

type onErrorValue bool

func (o *onErrorValue) String() string {
	if o != nil && *o {
		return "pass"
	}
	return "fail"
}

func (o *onErrorValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fail":
		*o = false
	case "pass":
		*o = true
	default:
		return errors.New("want fail or pass")
	}
	return nil
}
