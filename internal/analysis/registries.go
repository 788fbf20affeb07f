package analysis

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// RegistryStore keeps registry records and their sealed secrets; it never
// sees a plain secret.
type RegistryStore interface {
	CreateRegistry(ctx context.Context, c buildgate.RegistryCredential, sealed string) error
	// UpdateRegistry keeps the stored secret when sealed is "".
	UpdateRegistry(ctx context.Context, c buildgate.RegistryCredential, sealed string) error
	Registry(ctx context.Context, registry string) (*buildgate.RegistryCredential, error)
	RegistrySecret(ctx context.Context, registry string) (string, error)
	ListRegistries(ctx context.Context) ([]buildgate.RegistryCredential, error)
	RegistrySecrets(ctx context.Context) (map[string]string, error)
	DeleteRegistry(ctx context.Context, registry string) error
}

// Sealer seals secrets at rest (internal/secret), each for its record.
type Sealer interface {
	Seal(plain []byte, rec secret.Record) (string, error)
	Open(sealed string, rec secret.Record) ([]byte, error)
}

// Credential is a stored registry credential with its secret opened, for
// the pull path and the login check only.
type Credential struct {
	buildgate.RegistryCredential
	Password secret.Secret
}

// RegistryChecker logs in to a registry with a credential (for awsecr,
// minting a token first) and returns an buildgate.EINVALID error that names
// the registry and quotes its answer when it refuses.
type RegistryChecker interface {
	Login(ctx context.Context, c Credential) error
}

// Registries is the registry-credential use case: it validates records,
// checks them against their registry, and keeps their secrets sealed.
type Registries struct {
	store   RegistryStore
	sealer  Sealer
	checker RegistryChecker
	log     *slog.Logger
	// LoginTimeout bounds the login check; 0 means 30 seconds.
	LoginTimeout time.Duration
	// Changed, when set, is called after a record is added, changed or
	// deleted (the pull path drops its cached credentials).
	Changed func()
	// CheckHost, when set, refuses a record whose host its type may not
	// name (an awsecr record for a host that is not an ECR registry) with
	// an buildgate.EINVALID error; nothing is stored then.
	CheckHost func(c buildgate.RegistryCredential) error
}

// NewRegistries returns the service. checker may be nil when nothing is
// validated against a registry (validate must then be false).
func NewRegistries(store RegistryStore, sealer Sealer, checker RegistryChecker, log *slog.Logger) *Registries {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registries{store: store, sealer: sealer, checker: checker, log: log}
}

// Limits of a record's fields.
const (
	maxPasswordSize = 64 << 10
	maxCACertSize   = 1 << 20
	maxNameSize     = 256
)

// Add validates a new record, checks it against its registry unless
// validate is false, and stores it with its password sealed. Nothing is
// stored when any step fails.
func (r *Registries) Add(ctx context.Context, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error) {
	c, err := r.normalize(cred, password)
	if err != nil {
		return nil, err
	}
	if _, err := r.store.Registry(ctx, c.Registry); err == nil {
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "registry %q already has credentials: change them with PUT /v1/registries/%s", c.Registry, c.Registry)
	} else if buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		return nil, err
	}
	if validate {
		if err := r.login(ctx, Credential{RegistryCredential: c, Password: secret.Secret(password)}); err != nil {
			return nil, err
		}
	}
	sealed, err := r.sealer.Seal([]byte(password), secret.RegistryPassword(c.Registry))
	if err != nil {
		return nil, fmt.Errorf("sealing the password of registry %q: %w", c.Registry, err)
	}
	if err := r.store.CreateRegistry(ctx, c, sealed); err != nil {
		return nil, err
	}
	r.changed()
	r.log.Info("registry credentials added", "registry", c.Registry, "type", c.Type, "validated", validate)
	return r.store.Registry(ctx, c.Registry)
}

// Update replaces the fields of registry's record with cred's and checks
// the result against the registry unless validate is false. An empty
// password, username, type, name or ca_cert keeps the stored one (to drop
// a CA certificate, delete the record and add it again); verify_tls is
// replaced as given. The registry of a record cannot change.
func (r *Registries) Update(ctx context.Context, registry string, cred buildgate.RegistryCredential, password string, validate bool) (*buildgate.RegistryCredential, error) {
	key, err := registryKey(registry)
	if err != nil {
		return nil, err
	}
	cur, err := r.store.Registry(ctx, key)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cred.Registry) != "" {
		other, err := registryKey(cred.Registry)
		if err != nil {
			return nil, err
		}
		if other != key {
			return nil, buildgate.Errorf(buildgate.EINVALID, "the registry of a record cannot change (%q to %q): delete it and add %q", key, other, other)
		}
	}
	cred.Registry = key
	if strings.TrimSpace(cred.Username) == "" {
		cred.Username = cur.Username
	}
	if strings.TrimSpace(cred.Type) == "" {
		cred.Type = cur.Type
	}
	if strings.TrimSpace(cred.Name) == "" {
		cred.Name = cur.Name
	}
	if strings.TrimSpace(cred.CACert) == "" {
		cred.CACert = cur.CACert
	}
	effective := password
	if password == "" {
		sealed, err := r.store.RegistrySecret(ctx, key)
		if err != nil {
			return nil, err
		}
		plain, err := r.sealer.Open(sealed, secret.RegistryPassword(key))
		if err != nil {
			return nil, buildgate.Errorf(buildgate.EINVALID, "the stored password of registry %q cannot be opened (%v): give the password again", key, err)
		}
		effective = string(plain)
	}
	c, err := r.normalize(cred, effective)
	if err != nil {
		return nil, err
	}
	if validate {
		if err := r.login(ctx, Credential{RegistryCredential: c, Password: secret.Secret(effective)}); err != nil {
			return nil, err
		}
	}
	sealed := ""
	if password != "" {
		if sealed, err = r.sealer.Seal([]byte(password), secret.RegistryPassword(c.Registry)); err != nil {
			return nil, fmt.Errorf("sealing the password of registry %q: %w", c.Registry, err)
		}
	}
	if err := r.store.UpdateRegistry(ctx, c, sealed); err != nil {
		return nil, err
	}
	r.changed()
	r.log.Info("registry credentials updated", "registry", c.Registry, "type", c.Type, "password_changed", password != "", "validated", validate)
	return r.store.Registry(ctx, c.Registry)
}

// Get returns a record, without its password.
func (r *Registries) Get(ctx context.Context, registry string) (*buildgate.RegistryCredential, error) {
	key, err := registryKey(registry)
	if err != nil {
		return nil, err
	}
	return r.store.Registry(ctx, key)
}

// List returns every record, without passwords.
func (r *Registries) List(ctx context.Context) ([]buildgate.RegistryCredential, error) {
	return r.store.ListRegistries(ctx)
}

// Delete deletes a record and its sealed password.
func (r *Registries) Delete(ctx context.Context, registry string) error {
	key, err := registryKey(registry)
	if err != nil {
		return err
	}
	if err := r.store.DeleteRegistry(ctx, key); err != nil {
		return err
	}
	r.changed()
	r.log.Info("registry credentials deleted", "registry", key)
	return nil
}

// Credentials returns every record with its password opened, for the pull
// path. A record whose password cannot be opened (sealed under another
// key) is left out and logged: pulls from it go anonymous and say so.
func (r *Registries) Credentials(ctx context.Context) ([]Credential, error) {
	recs, err := r.store.ListRegistries(ctx)
	if err != nil {
		return nil, err
	}
	sealed, err := r.store.RegistrySecrets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, 0, len(recs))
	for _, rec := range recs {
		plain, err := r.sealer.Open(sealed[rec.Registry], secret.RegistryPassword(rec.Registry))
		if err != nil {
			r.log.Warn("registry credentials cannot be used", "registry", rec.Registry, "err", err)
			continue
		}
		out = append(out, Credential{RegistryCredential: rec, Password: secret.Secret(plain)})
	}
	return out, nil
}

func (r *Registries) changed() {
	if r.Changed != nil {
		r.Changed()
	}
}

func (r *Registries) login(ctx context.Context, c Credential) error {
	if r.checker == nil {
		return buildgate.Errorf(buildgate.EINVALID, "this gate cannot check registry credentials: add them with validate=false")
	}
	timeout := r.LoginTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.checker.Login(lctx, c)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if lctx.Err() != nil {
		return buildgate.Errorf(buildgate.EINVALID, "registry %s did not answer the login within %s: check the host, or add the record with validate=false", c.Registry, timeout)
	}
	pw := string(c.Password)
	msg := secret.Redact(err.Error(), pw)
	if buildgate.ErrorCode(err) == buildgate.EINVALID {
		return buildgate.Errorf(buildgate.EINVALID, "%s", secret.Redact(buildgate.ErrorMessage(err), pw))
	}
	r.log.Warn("registry login check failed", "registry", c.Registry, "err", msg)
	return buildgate.Errorf(buildgate.EINVALID, "logging in to registry %s: %s", c.Registry, msg)
}

var (
	hostRE    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
	segmentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
)

const registryHelp = "the host, optionally with a path prefix, such as ghcr.io, registry.example.com:5000 or gcr.io/my-project"

// registryKey checks and canonicalises a registry name: host[:port] with
// an optional repository path prefix, no scheme, no API path.
func registryKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "registry is required: %s", registryHelp)
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		return "", buildgate.Errorf(buildgate.EINVALID, "registry %q has a scheme (%s://): write it without one, as %q", s, scheme, suggestRegistry(rest))
	}
	if strings.ContainsAny(s, " \t\r\n@?#\\") {
		return "", buildgate.Errorf(buildgate.EINVALID, "registry %q has characters a registry cannot have: write %s", s, registryHelp)
	}
	host, path, hasPath := strings.Cut(s, "/")
	if !hostRE.MatchString(host) {
		return "", buildgate.Errorf(buildgate.EINVALID, "registry host %q is not a valid host[:port]: write %s", host, registryHelp)
	}
	if hasPath {
		if path == "" || strings.HasSuffix(path, "/") {
			return "", buildgate.Errorf(buildgate.EINVALID, "registry %q ends with /: write it as %q", s, suggestRegistry(s))
		}
		first, _, _ := strings.Cut(path, "/")
		if first == "v1" || first == "v2" {
			return "", buildgate.Errorf(buildgate.EINVALID, "registry %q has an API path (/%s): write the host only, as %q", s, path, suggestRegistry(s))
		}
		for _, seg := range strings.Split(path, "/") {
			if !segmentRE.MatchString(seg) {
				return "", buildgate.Errorf(buildgate.EINVALID, "registry %q: path prefix %q is not a repository path (lowercase letters, digits and . _ - between them): write %s", s, path, registryHelp)
			}
		}
	}
	return buildgate.CanonicalRegistry(s), nil
}

// suggestRegistry strips what does not belong in a registry name: a
// trailing slash and an API path.
func suggestRegistry(s string) string {
	s = strings.TrimRight(s, "/")
	host, path, _ := strings.Cut(s, "/")
	first, _, _ := strings.Cut(path, "/")
	if path == "" || first == "v1" || first == "v2" {
		return buildgate.CanonicalRegistry(host)
	}
	return buildgate.CanonicalRegistry(host + "/" + path)
}

// normalize checks a record with normalizeCredential, then its host with
// CheckHost.
func (r *Registries) normalize(cred buildgate.RegistryCredential, password string) (buildgate.RegistryCredential, error) {
	c, err := normalizeCredential(cred, password)
	if err != nil {
		return c, err
	}
	if r.CheckHost != nil {
		if err := r.CheckHost(c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// normalizeCredential checks a record and fills its defaults. password
// is the effective password (the stored one when an update keeps it).
func normalizeCredential(c buildgate.RegistryCredential, password string) (buildgate.RegistryCredential, error) {
	c.Type = strings.ToLower(strings.TrimSpace(c.Type))
	if c.Type == "" {
		c.Type = buildgate.RegistryTypeDockerV2
	}
	if c.Type != buildgate.RegistryTypeDockerV2 && c.Type != buildgate.RegistryTypeAWSECR {
		return c, buildgate.Errorf(buildgate.EINVALID, "unknown registry type %q: want %s (Docker Hub, GCR and Artifact Registry with _json_key, GitLab, Quay, ACR, any v2 registry) or %s (Amazon ECR)",
			c.Type, buildgate.RegistryTypeDockerV2, buildgate.RegistryTypeAWSECR)
	}
	key, err := registryKey(c.Registry)
	if err != nil {
		return c, err
	}
	c.Registry = key
	if c.Type == buildgate.RegistryTypeAWSECR && strings.Contains(key, "/") {
		host, _, _ := strings.Cut(key, "/")
		return c, buildgate.Errorf(buildgate.EINVALID, "an awsecr registry is a whole host (its token serves every repository): write it as %q", host)
	}
	c.Username = strings.TrimSpace(c.Username)
	if c.Username == "" {
		if c.Type == buildgate.RegistryTypeAWSECR {
			return c, buildgate.Errorf(buildgate.EINVALID, "username is required: the AWS access key id, or %s for the default AWS credential chain", buildgate.RegistryUserECRAuto)
		}
		return c, buildgate.Errorf(buildgate.EINVALID, "username is required")
	}
	if len(password) > maxPasswordSize {
		return c, buildgate.Errorf(buildgate.EINVALID, "password is longer than %d bytes", maxPasswordSize)
	}
	autoECR := c.Type == buildgate.RegistryTypeAWSECR && c.Username == buildgate.RegistryUserECRAuto
	if password == "" && !autoECR {
		if c.Type == buildgate.RegistryTypeAWSECR {
			return c, buildgate.Errorf(buildgate.EINVALID, "password is required: the AWS secret access key")
		}
		return c, buildgate.Errorf(buildgate.EINVALID, "password is required")
	}
	switch c.Username {
	case buildgate.RegistryUserGCRJSONKey:
		if err := checkJSONKey([]byte(password)); err != nil {
			return c, err
		}
	case buildgate.RegistryUserGCRJSONKeyBase64:
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(password))
		if err != nil {
			return c, buildgate.Errorf(buildgate.EINVALID, "invalid JSON key: with username %s the password must be the key file's JSON in base64, and it is not base64", buildgate.RegistryUserGCRJSONKeyBase64)
		}
		if err := checkJSONKey(raw); err != nil {
			return c, err
		}
	}
	if len(c.CACert) > maxCACertSize {
		return c, buildgate.Errorf(buildgate.EINVALID, "ca_cert is longer than %d bytes", maxCACertSize)
	}
	if strings.TrimSpace(c.CACert) == "" {
		c.CACert = ""
	} else if err := checkCACert(c.CACert); err != nil {
		return c, buildgate.Errorf(buildgate.EINVALID, "%v", err)
	}
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		c.Name = c.Registry
	}
	if len(c.Name) > maxNameSize {
		return c, buildgate.Errorf(buildgate.EINVALID, "name is longer than %d bytes", maxNameSize)
	}
	return c, nil
}

// checkJSONKey checks a GCP service account key without ever quoting it.
func checkJSONKey(b []byte) error {
	const how = "with username _json_key the password must be the service account key file's JSON, whole"
	var key map[string]any
	if err := json.Unmarshal(b, &key); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return buildgate.Errorf(buildgate.EINVALID, "invalid JSON key: the password is not valid JSON (error at byte %d); %s", se.Offset, how)
		}
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON key: the password is not a JSON object; %s", how)
	}
	var missing []string
	for _, f := range []string{"type", "client_email", "private_key"} {
		if s, _ := key[f].(string); strings.TrimSpace(s) == "" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON key: it lacks %s; %s", strings.Join(missing, ", "), how)
	}
	return nil
}

// checkCACert checks that text holds PEM certificates and nothing else.
func checkCACert(text string) error {
	rest := bytes.TrimSpace([]byte(text))
	n := 0
	for len(rest) > 0 {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = bytes.TrimSpace(r)
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("ca_cert holds a PEM %q block; it must hold only CERTIFICATE blocks", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("ca_cert certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("ca_cert is not PEM: give the CA's certificate as PEM text (-----BEGIN CERTIFICATE----- ...)")
	}
	if len(rest) > 0 {
		return errors.New("ca_cert has text that is not PEM after its certificates")
	}
	return nil
}
