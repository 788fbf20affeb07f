// Command gatectl is buildgate's client CLI, the maintained successor of
// anchore-cli: it adds images, reads their vulnerabilities, checks them
// against the policy, and manages policies, registry credentials and
// subscriptions through the gate's /v1 API.
//
// It imports only internal/client and internal/api, like the CI step
// binaries. It prints tables for people and JSON with --json, reads the
// gate from GATE_URL and the token from GATE_TOKEN, and exits 0 when all
// went well (a GO or WARN verdict), 1 when the policy stops the image, 2
// on an error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

// Exit statuses, as the CI steps use them.
const (
	exitOK    = 0
	exitStop  = 1
	exitError = 2
)

// errStop is returned when the policy stops an image.
var errStop = errors.New("policy STOP")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	out    io.Writer
	json   bool
	gate   *client.Client
}

// command is one leaf command, such as "image add".
type command struct {
	path  string // "image add"
	args  string // usage of the arguments
	help  string
	flags func(fs *flag.FlagSet) // adds the command's own flags; may be nil
	nargs func(n int) bool
	run   func(e *env, fs *flag.FlagSet, args []string) error
	// local commands need no gate.
	local bool
}

func exactly(k int) func(int) bool { return func(n int) bool { return n == k } }

// commands lists every command; completion and usage read it.
var commands = []*command{
	{path: "image add", args: "REF", help: "submit an image for analysis", nargs: exactly(1), run: imageAdd,
		flags: func(fs *flag.FlagSet) {
			fs.Bool("wait", false, "wait until the analysis ends")
			fs.Duration("timeout", 30*time.Minute, "how long --wait waits")
			fs.String("tag", "", "repo:tag the image stands for in policy mappings (for a digest REF)")
			fs.Bool("force", false, "analyse again even when the digest is known")
			fs.String("dockerfile", "", "path of the image's Dockerfile, sent with it")
		}},
	{path: "image list", help: "list images", nargs: exactly(0), run: imageList,
		flags: func(fs *flag.FlagSet) {
			fs.String("tag", "", "only images with this repo:tag")
			fs.String("status", "", "only images in this status: queued, analyzing, analyzed or failed")
		}},
	{path: "image get", args: "REF|DIGEST", help: "show an image", nargs: exactly(1), run: imageGet},
	{path: "image vuln", args: "REF|DIGEST all|os|non-os", help: "list an image's vulnerabilities", nargs: exactly(2), run: imageVuln},
	{path: "evaluate check", args: "REF|DIGEST", help: "check an image against the policy (exit 1 on STOP)", nargs: exactly(1), run: evaluateCheck,
		flags: func(fs *flag.FlagSet) {
			fs.String("tag", "", "repo:tag to pick the policy mapping with (default: REF, or the image's first tag)")
			fs.String("policy", "", "bundle id to check with instead of the active bundle")
			fs.Bool("detail", false, "list the findings")
		}},
	{path: "policy list", help: "list policy bundles", nargs: exactly(0), run: policyList},
	{path: "policy add", args: "FILE", help: "store a policy bundle (JSON or YAML; - reads stdin)", nargs: exactly(1), run: policyAdd,
		flags: func(fs *flag.FlagSet) { fs.Bool("activate", false, "make it the active bundle") }},
	{path: "policy get", args: "ID", help: "show a policy bundle (--json prints the bundle)", nargs: exactly(1), run: policyGet},
	{path: "policy activate", args: "ID", help: "make a bundle the active one", nargs: exactly(1), run: policyActivate},
	{path: "registry add", args: "REGISTRY USERNAME", help: "store registry credentials (password from --password-stdin or GATE_REGISTRY_PASSWORD)", nargs: exactly(2), run: registryAdd,
		flags: func(fs *flag.FlagSet) {
			fs.Bool("password-stdin", false, "read the password from standard input")
			fs.String("type", "docker_v2", "docker_v2 or awsecr")
			fs.Bool("insecure", false, "do not verify the registry's TLS certificate")
			fs.Bool("skip-validate", false, "store without logging in to the registry first")
		}},
	{path: "registry list", help: "list registry credentials (never passwords)", nargs: exactly(0), run: registryList},
	{path: "registry del", args: "REGISTRY", help: "delete a registry's credentials", nargs: exactly(1), run: registryDel},
	{path: "subscription list", help: "list subscriptions", nargs: exactly(0), run: subscriptionList},
	{path: "subscription activate", args: "TYPE KEY", help: "activate (or add) the subscription of TYPE for the tag KEY", nargs: exactly(2), run: subscriptionActivate},
	{path: "subscription deactivate", args: "TYPE KEY", help: "deactivate the subscription of TYPE for the tag KEY", nargs: exactly(2), run: subscriptionDeactivate},
	{path: "system status", help: "show the gate's vulnerability DB status", nargs: exactly(0), run: systemStatus},
}

// The completion command reads the table, so it joins it at init.
func init() {
	commands = append(commands, &command{path: "completion", args: "bash|zsh|fish", help: "print a shell completion script", nargs: exactly(1), run: completion, local: true})
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gatectl [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]

The gate's URL comes from --url or GATE_URL, the token from --token or
GATE_TOKEN. Exit status: 0 ok (GO or WARN), 1 policy STOP, 2 error.

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.path, c.args, c.help)
	}
	tw.Flush()
}

// run runs gatectl with args and returns its exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, rest := findCommand(globalFlagsLast(args))
	if c == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "gatectl: unknown command %q\n", strings.Join(leadingWords(args), " "))
		usage(stderr)
		return exitError
	}
	fs := flag.NewFlagSet("gatectl "+c.path, flag.ContinueOnError)
	fs.SetOutput(stderr)
	gateURL := fs.String("url", getenv("GATE_URL"), "the gate's base URL (GATE_URL)")
	token := fs.String("token", "", "API token (default: GATE_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if c.flags != nil {
		c.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gatectl %s [flags] %s\n  %s\n\nFlags:\n", c.path, c.args, c.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if !c.nargs(len(pos)) {
		fmt.Fprintf(stderr, "gatectl %s: want arguments %s, got %d\n", c.path, orNone(c.args), len(pos))
		fs.Usage()
		return exitError
	}
	e := &env{ctx: ctx, getenv: getenv, stdin: stdin, out: stdout, json: *asJSON}
	if !c.local {
		if *token == "" {
			*token = getenv("GATE_TOKEN")
		}
		if *gateURL == "" {
			fmt.Fprintln(stderr, "gatectl: no gate: set GATE_URL or --url (e.g. https://gate.example.com)")
			return exitError
		}
		if u, err := url.Parse(*gateURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fmt.Fprintf(stderr, "gatectl: invalid gate URL %q: want http(s)://HOST[:PORT]\n", *gateURL)
			return exitError
		}
		if *token == "" {
			fmt.Fprintln(stderr, "gatectl: no token: set GATE_TOKEN or --token (make one with gate token create)")
			return exitError
		}
		e.gate = client.New(*gateURL, *token, nil)
	}
	switch err := c.run(e, fs, pos); {
	case err == nil:
		return exitOK
	case errors.Is(err, errStop):
		return exitStop
	default:
		fmt.Fprintf(stderr, "gatectl %s: %v\n", c.path, err)
		return exitError
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// findCommand finds the longest command path that args start with.
func findCommand(args []string) (*command, []string) {
	words := leadingWords(args)
	for n := min(len(words), 2); n > 0; n-- {
		p := strings.Join(words[:n], " ")
		for _, c := range commands {
			if c.path == p {
				return c, args[n:]
			}
		}
	}
	return nil, nil
}

// globalFlagsLast moves flags given before the command ("gatectl --json
// image list") after it, where the command's flag set parses them.
func globalFlagsLast(args []string) []string {
	var pre []string
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		a := args[i]
		pre = append(pre, a)
		i++
		if name := strings.TrimLeft(a, "-"); (name == "url" || name == "token") && i < len(args) {
			pre = append(pre, args[i])
			i++
		}
	}
	return append(args[i:len(args):len(args)], pre...)
}

func leadingWords(args []string) []string {
	var w []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(w) == 2 {
			break
		}
		w = append(w, a)
	}
	return w
}

// parseInterspersed parses flags before, between and after positional
// arguments ("image add REF --wait").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func flagString(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }
func flagBool(fs *flag.FlagSet, name string) bool     { return fs.Lookup(name).Value.String() == "true" }

// printJSON writes v indented.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints a header and rows aligned.
func (e *env) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// NormalizeTag completes a user's repo[:tag] the way registries read it:
// docker.io for a name without a registry host, library/ for an official
// image, :latest without a tag. The gate stores tags in this form.
func normalizeTag(ref string) string {
	name, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !strings.Contains(name, "/") {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	return name + ":" + tag
}

func isDigest(s string) bool { return strings.HasPrefix(s, "sha256:") }

// resolve finds the image a REF or DIGEST names: a digest as given, a
// repo@digest's digest, or the newest image with the tag.
func (e *env) resolve(ref string) (*api.Image, error) {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		ref = d
	}
	if isDigest(ref) {
		return e.gate.Image(e.ctx, ref)
	}
	var list api.ImageList
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/images?tag="+url.QueryEscape(normalizeTag(ref)), nil, &list); err != nil {
		return nil, err
	}
	if len(list.Images) == 0 {
		return nil, fmt.Errorf("no image tagged %s: add it with gatectl image add %s", normalizeTag(ref), ref)
	}
	return &list.Images[0], nil
}

func imageRow(img *api.Image) []string {
	tags := strings.Join(img.Tags, ",")
	if tags == "" {
		tags = "-"
	}
	status := img.Status
	if img.Error != "" {
		status += ": " + img.Error
	}
	return []string{img.Digest, tags, status, img.CreatedAt.Format(time.RFC3339)}
}

var imageHeader = []string{"DIGEST", "TAGS", "STATUS", "ADDED"}

func (e *env) printImages(imgs ...*api.Image) error {
	if e.json {
		if len(imgs) == 1 {
			return e.printJSON(imgs[0])
		}
		return e.printJSON(imgs)
	}
	rows := make([][]string, len(imgs))
	for i, img := range imgs {
		rows[i] = imageRow(img)
	}
	return e.table(imageHeader, rows)
}

func imageAdd(e *env, fs *flag.FlagSet, args []string) error {
	req := api.SubmitImageRequest{Ref: args[0], Tag: flagString(fs, "tag"), Force: flagBool(fs, "force")}
	if p := flagString(fs, "dockerfile"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading the Dockerfile: %w", err)
		}
		req.Dockerfile = string(b)
	}
	img, err := e.gate.SubmitImage(e.ctx, req)
	if err != nil {
		return err
	}
	if flagBool(fs, "wait") {
		timeout, _ := time.ParseDuration(flagString(fs, "timeout"))
		ctx, cancel := context.WithTimeout(e.ctx, timeout)
		defer cancel()
		if img, err = e.gate.WaitAnalyzed(ctx, img.Digest, time.Hour, nil); err != nil {
			return fmt.Errorf("waiting for %s: %w", args[0], err)
		}
		if img.Status == api.StatusFailed {
			err := fmt.Errorf("the analysis of %s failed: %s", img.Digest, img.Error)
			if perr := e.printImages(img); perr != nil {
				return errors.Join(err, perr)
			}
			return err
		}
	}
	return e.printImages(img)
}

func imageList(e *env, fs *flag.FlagSet, _ []string) error {
	q := url.Values{}
	if t := flagString(fs, "tag"); t != "" {
		q.Set("tag", normalizeTag(t))
	}
	if s := flagString(fs, "status"); s != "" {
		q.Set("status", s)
	}
	var list api.ImageList
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/images?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	imgs := make([]*api.Image, len(list.Images))
	for i := range list.Images {
		imgs[i] = &list.Images[i]
	}
	if e.json {
		return e.printJSON(list)
	}
	return e.printImages(imgs...)
}

func imageGet(e *env, _ *flag.FlagSet, args []string) error {
	img, err := e.resolve(args[0])
	if err != nil {
		return err
	}
	return e.printImages(img)
}

func imageVuln(e *env, _ *flag.FlagSet, args []string) error {
	typ := args[1]
	if typ != "all" && typ != "os" && typ != "non-os" {
		return fmt.Errorf("unknown vulnerability type %q: want all, os or non-os", typ)
	}
	img, err := e.resolve(args[0])
	if err != nil {
		return err
	}
	list, err := e.gate.Vulnerabilities(e.ctx, img.Digest, typ)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(list)
	}
	rows := make([][]string, 0, len(list.Vulnerabilities))
	for _, v := range list.Vulnerabilities {
		fix := strings.Join(v.FixVersions, ",")
		if fix == "" {
			fix = "None"
		}
		url := ""
		if len(v.URLs) > 0 {
			url = v.URLs[0]
		}
		rows = append(rows, []string{v.ID, v.PackageName + "-" + v.PackageVersion, v.Severity, fix, v.PackageType, url})
	}
	return e.table([]string{"VULNERABILITY", "PACKAGE", "SEVERITY", "FIX", "TYPE", "URL"}, rows)
}

func evaluateCheck(e *env, fs *flag.FlagSet, args []string) error {
	img, err := e.resolve(args[0])
	if err != nil {
		return err
	}
	tag := flagString(fs, "tag")
	if tag == "" && !isDigest(args[0]) && !strings.Contains(args[0], "@") {
		tag = args[0]
	}
	q := url.Values{}
	if tag != "" {
		q.Set("tag", normalizeTag(tag))
	}
	if p := flagString(fs, "policy"); p != "" {
		q.Set("policy", p)
	}
	var v api.Verdict
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/images/"+url.PathEscape(img.Digest)+"/check?"+q.Encode(), nil, &v); err != nil {
		return err
	}
	if e.json {
		if err := e.printJSON(v); err != nil {
			return err
		}
	} else {
		if err := e.table([]string{"DIGEST", "TAG", "STATUS", "BUNDLE", "REASON"},
			[][]string{{v.ImageDigest, orDash(v.Tag), strings.ToUpper(v.FinalAction), fmt.Sprintf("%s (v%d)", v.BundleName, v.BundleVersion), v.Reason}}); err != nil {
			return err
		}
		if flagBool(fs, "detail") && len(v.Findings) > 0 {
			fmt.Fprintln(e.out)
			rows := make([][]string, 0, len(v.Findings))
			for _, f := range v.Findings {
				rows = append(rows, []string{f.Gate, f.Trigger, strings.ToUpper(f.Action), f.Message})
			}
			if err := e.table([]string{"GATE", "TRIGGER", "ACTION", "MESSAGE"}, rows); err != nil {
				return err
			}
		}
	}
	if strings.EqualFold(v.FinalAction, "stop") {
		return errStop
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func policyRows(ps []api.Policy) [][]string {
	rows := make([][]string, len(ps))
	for i, p := range ps {
		rows[i] = []string{p.ID, p.Name, fmt.Sprint(p.Active), fmt.Sprint(p.Version), p.UpdatedAt.Format(time.RFC3339)}
	}
	return rows
}

var policyHeader = []string{"ID", "NAME", "ACTIVE", "VERSION", "UPDATED"}

func policyList(e *env, _ *flag.FlagSet, _ []string) error {
	var list api.PolicyList
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/policies", nil, &list); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(list)
	}
	return e.table(policyHeader, policyRows(list.Policies))
}

func (e *env) printPolicy(p *api.Policy) error {
	if e.json {
		return e.printJSON(p)
	}
	return e.table(policyHeader, policyRows([]api.Policy{*p}))
}

// maxBundle bounds a bundle file, as the gate does.
const maxBundle = 16 << 20

func policyAdd(e *env, fs *flag.FlagSet, args []string) error {
	r := e.stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("reading the bundle: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBundle+1))
	if err != nil {
		return fmt.Errorf("reading the bundle: %w", err)
	}
	if len(b) > maxBundle {
		return fmt.Errorf("the bundle is larger than %d bytes", maxBundle)
	}
	path := "/v1/policies"
	if flagBool(fs, "activate") {
		path += "?activate=true"
	}
	ct := "application/json"
	if !json.Valid(b) {
		ct = "application/yaml"
	}
	raw, err := e.gate.Raw(e.ctx, http.MethodPost, path, bytes.NewReader(b), ct)
	if err != nil {
		return err
	}
	var p api.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decoding the gate's answer: %w", err)
	}
	return e.printPolicy(&p)
}

func policyGet(e *env, _ *flag.FlagSet, args []string) error {
	var p api.Policy
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(args[0]), nil, &p); err != nil {
		return err
	}
	return e.printPolicy(&p)
}

func policyActivate(e *env, _ *flag.FlagSet, args []string) error {
	var p api.Policy
	if err := e.gate.Do(e.ctx, http.MethodPost, "/v1/policies/"+url.PathEscape(args[0])+"/activate", nil, &p); err != nil {
		return err
	}
	return e.printPolicy(&p)
}

func registryRows(rs []api.Registry) [][]string {
	rows := make([][]string, len(rs))
	for i, r := range rs {
		rows[i] = []string{r.Registry, r.Name, r.Username, r.Type, fmt.Sprint(r.VerifyTLS), r.UpdatedAt.Format(time.RFC3339)}
	}
	return rows
}

var registryHeader = []string{"REGISTRY", "NAME", "USER", "TYPE", "VERIFY TLS", "UPDATED"}

func registryAdd(e *env, fs *flag.FlagSet, args []string) error {
	password := e.getenv("GATE_REGISTRY_PASSWORD")
	if flagBool(fs, "password-stdin") {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return errors.New("no password: pass it on stdin with --password-stdin, or in GATE_REGISTRY_PASSWORD (never on the command line)")
	}
	verify := !flagBool(fs, "insecure")
	req := api.RegistryRequest{Registry: args[0], Username: args[1], Password: password, Type: flagString(fs, "type"), VerifyTLS: &verify}
	path := "/v1/registries"
	if flagBool(fs, "skip-validate") {
		path += "?validate=false"
	}
	var r api.Registry
	if err := e.gate.Do(e.ctx, http.MethodPost, path, req, &r); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(r)
	}
	return e.table(registryHeader, registryRows([]api.Registry{r}))
}

func registryList(e *env, _ *flag.FlagSet, _ []string) error {
	var list api.RegistryList
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/registries", nil, &list); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(list)
	}
	return e.table(registryHeader, registryRows(list.Registries))
}

func registryDel(e *env, _ *flag.FlagSet, args []string) error {
	// The registry may have a path prefix (gcr.io/project): escape each segment.
	segs := strings.Split(args[0], "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	if err := e.gate.Do(e.ctx, http.MethodDelete, "/v1/registries/"+strings.Join(segs, "/"), nil, nil); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]string{"deleted": args[0]})
	}
	fmt.Fprintf(e.out, "deleted %s\n", args[0])
	return nil
}

func subscriptionRows(ss []api.Subscription) [][]string {
	rows := make([][]string, len(ss))
	for i, s := range ss {
		rows[i] = []string{s.Key, s.Type, fmt.Sprint(s.Active), s.ID}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0]+rows[i][1] < rows[j][0]+rows[j][1] })
	return rows
}

var subscriptionHeader = []string{"TAG", "TYPE", "ACTIVE", "ID"}

func subscriptionList(e *env, _ *flag.FlagSet, _ []string) error {
	var list api.SubscriptionList
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/subscriptions", nil, &list); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(list)
	}
	return e.table(subscriptionHeader, subscriptionRows(list.Subscriptions))
}

func subscriptionActivate(e *env, _ *flag.FlagSet, args []string) error {
	return e.setSubscription(args[0], args[1], true)
}

func subscriptionDeactivate(e *env, _ *flag.FlagSet, args []string) error {
	return e.setSubscription(args[0], args[1], false)
}

// setSubscription activates or deactivates the subscription of a type for
// a tag, adding it when activating one that does not exist.
func (e *env) setSubscription(typ, key string, active bool) error {
	key = normalizeTag(key)
	var list api.SubscriptionList
	q := url.Values{"key": {key}, "type": {typ}}
	if err := e.gate.Do(e.ctx, http.MethodGet, "/v1/subscriptions?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	var s api.Subscription
	switch {
	case len(list.Subscriptions) > 0:
		id := list.Subscriptions[0].ID
		if err := e.gate.Do(e.ctx, http.MethodPut, "/v1/subscriptions/"+url.PathEscape(id), api.SubscriptionRequest{Active: &active}, &s); err != nil {
			return err
		}
	case active:
		if err := e.gate.Do(e.ctx, http.MethodPost, "/v1/subscriptions", api.SubscriptionRequest{Key: key, Type: typ, Active: &active}, &s); err != nil {
			return err
		}
	default:
		return fmt.Errorf("no %s subscription for %s", typ, key)
	}
	if e.json {
		return e.printJSON(s)
	}
	return e.table(subscriptionHeader, subscriptionRows([]api.Subscription{s}))
}

func systemStatus(e *env, _ *flag.FlagSet, _ []string) error {
	st, err := e.gate.DBStatus(e.ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(st)
	}
	built := "-"
	if st.Built != nil {
		built = st.Built.Format(time.RFC3339)
	}
	if err := e.table([]string{"DB READY", "BUILT", "AGE", "SCHEMA"}, [][]string{{fmt.Sprint(st.Ready), built, orDash(st.Age), orDash(st.SchemaVersion)}}); err != nil {
		return err
	}
	if st.LastUpdateError != "" {
		fmt.Fprintf(e.out, "last update failed: %s\n", st.LastUpdateError)
	}
	if len(st.Providers) > 0 {
		fmt.Fprintln(e.out)
		rows := make([][]string, 0, len(st.Providers))
		for _, p := range st.Providers {
			captured := "-"
			if p.DateCaptured != nil {
				captured = p.DateCaptured.Format(time.RFC3339)
			}
			rows = append(rows, []string{p.Name, fmt.Sprint(p.Records), captured})
		}
		return e.table([]string{"PROVIDER", "RECORDS", "CAPTURED"}, rows)
	}
	return nil
}
