package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/netguard"
	"github.com/buildgate/buildgate/internal/secret"
)

// Credential is one stored registry login, its secret opened, as the pull
// path needs it.
type Credential struct {
	// Registry is the host, optionally with a path prefix; the longest
	// prefix of "host/repository" wins.
	Registry string
	// Type is buildgate.RegistryTypeDockerV2 or buildgate.RegistryTypeAWSECR.
	Type     string
	Username string
	Password secret.Secret
	// VerifyTLS false skips certificate checks for the host; CACert (PEM)
	// is trusted for the host besides the system's roots.
	VerifyTLS bool
	CACert    string
}

// Host returns the host of the credential's registry.
func (c Credential) Host() string {
	h, _, _ := strings.Cut(buildgate.CanonicalRegistry(c.Registry), "/")
	return h
}

// CredentialSource returns every stored credential with its secret opened.
type CredentialSource func(ctx context.Context) ([]Credential, error)

// AuthConfig tunes Auth.
type AuthConfig struct {
	// Base is the transport under the per-registry TLS settings; nil means
	// remote.DefaultTransport. It must be an *http.Transport for registries
	// with their own TLS settings.
	Base http.RoundTripper
	// ECR says how ECR tokens are minted.
	ECR ECRConfig
	// Guard says which private addresses are allowed; an awsecr record
	// may name one of them instead of an ECR host. nil allows none.
	Guard *netguard.Guard
	// CacheTTL is how long credentials read from the source are used
	// before they are read again; Invalidate drops them at once. 0 means
	// 30 seconds.
	CacheTTL time.Duration
}

// Auth serves stored credentials to go-containerregistry: a keychain that
// picks the credential whose registry is the longest prefix of an image's
// "host/repository", a transport that applies each host's TLS settings, and
// a login check. Credentials only ever go to their own host: the keychain
// hands go-containerregistry one authenticator per registry, and its
// transports attach it only to requests for that registry's host, never to
// a host a registry redirects to (blob storage).
type Auth struct {
	src  CredentialSource
	cfg  AuthConfig
	base http.RoundTripper
	ecr  *ECRTokens

	mu     sync.Mutex
	creds  []Credential
	loaded time.Time
	tls    map[string]tlsTransport // by host
}

type tlsTransport struct {
	fingerprint string
	rt          http.RoundTripper
}

// NewAuth returns the credentials of src for the pull path.
func NewAuth(src CredentialSource, cfg AuthConfig) *Auth {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	base := cfg.Base
	if base == nil {
		base = remote.DefaultTransport
	}
	return &Auth{src: src, cfg: cfg, base: base, ecr: NewECRTokens(cfg.ECR), tls: map[string]tlsTransport{}}
}

// ECR returns the ECR token cache, for tests and metrics.
func (a *Auth) ECR() *ECRTokens { return a.ecr }

// Invalidate drops the cached credentials; the next pull reads them again.
func (a *Auth) Invalidate() {
	a.mu.Lock()
	a.creds, a.loaded = nil, time.Time{}
	a.mu.Unlock()
}

func (a *Auth) credentials(ctx context.Context) ([]Credential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.creds != nil && time.Since(a.loaded) < a.cfg.CacheTTL {
		return a.creds, nil
	}
	creds, err := a.src(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %w", err)
	}
	for i := range creds {
		creds[i].Registry = buildgate.CanonicalRegistry(creds[i].Registry)
	}
	if creds == nil {
		creds = []Credential{}
	}
	a.creds, a.loaded = creds, time.Now()
	return creds, nil
}

// Keychain returns the keychain for registry.Config.Keychain.
func (a *Auth) Keychain() authn.Keychain { return keychain{a} }

type keychain struct{ a *Auth }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext picks the credential whose registry is the longest
// prefix of the resource's "host/repository" and returns it as an
// authenticator (minting an ECR token first for awsecr), or anonymous.
func (k keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	creds, err := k.a.credentials(ctx)
	if err != nil {
		return nil, err
	}
	c, ok := Match(creds, resourcePath(r))
	if !ok {
		return authn.Anonymous, nil
	}
	return k.a.authenticator(ctx, c)
}

// resourcePath returns "host/repository" (or "host" for a registry) with
// Docker Hub's hosts spelled docker.io.
func resourcePath(r authn.Resource) string {
	reg := r.RegistryStr()
	rest := strings.TrimPrefix(r.String(), reg)
	return buildgate.CanonicalRegistry(reg) + rest
}

// Match returns the credential whose registry is the longest prefix of
// path ("host/repository") segment by segment. A path with an empty or dot
// segment ("host/team-a/../team-b") matches nothing.
func Match(creds []Credential, path string) (Credential, bool) {
	path = buildgate.CanonicalRegistry(path)
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return Credential{}, false
		}
	}
	best, found := Credential{}, false
	for _, c := range creds {
		r := buildgate.CanonicalRegistry(c.Registry)
		if path == r || strings.HasPrefix(path, r+"/") {
			if !found || len(r) > len(buildgate.CanonicalRegistry(best.Registry)) {
				best, found = c, true
			}
		}
	}
	return best, found
}

func (a *Auth) authenticator(ctx context.Context, c Credential) (authn.Authenticator, error) {
	if c.Type == buildgate.RegistryTypeAWSECR {
		if err := CheckECRHost(c.Host(), a.cfg.Guard); err != nil {
			return nil, err
		}
		user, pass, err := a.ecr.Token(ctx, c)
		if err != nil {
			return nil, err
		}
		return authn.FromConfig(authn.AuthConfig{Username: user, Password: string(pass)}), nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: string(c.Password)}), nil
}

// Transport returns the transport for registry.Config.Transport: each
// request goes through a transport with its host's TLS settings (the
// stored CA certificates and verify_tls), or through the base transport
// for hosts without any (including hosts a registry redirects to).
func (a *Auth) Transport() http.RoundTripper { return hostTransport{a} }

type hostTransport struct{ a *Auth }

func (t hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := t.a.transportFor(req.Context(), req.URL.Host)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

func (a *Auth) transportFor(ctx context.Context, host string) (http.RoundTripper, error) {
	creds, err := a.credentials(ctx)
	if err != nil {
		return nil, err
	}
	host = buildgate.CanonicalRegistry(strings.ToLower(host))
	var mine []Credential
	for _, c := range creds {
		if c.Host() == host {
			mine = append(mine, c)
		}
	}
	return a.tlsFor(host, mine)
}

// tlsFor returns the transport of host for the TLS settings of its
// records: their CA certificates are trusted together, and certificate
// checks are skipped only when every record of the host says so.
func (a *Auth) tlsFor(host string, creds []Credential) (http.RoundTripper, error) {
	verify := len(creds) == 0
	var cas []string
	for _, c := range creds {
		verify = verify || c.VerifyTLS
		if strings.TrimSpace(c.CACert) != "" {
			cas = append(cas, c.CACert)
		}
	}
	if verify && len(cas) == 0 {
		return a.base, nil
	}
	sort.Strings(cas)
	sum := sha256.Sum256([]byte(fmt.Sprint(verify, cas)))
	fp := hex.EncodeToString(sum[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tls[host]; ok && t.fingerprint == fp {
		return t.rt, nil
	}
	rt, err := newTLSTransport(a.base, verify, cas)
	if err != nil {
		return nil, fmt.Errorf("TLS settings of registry %s: %w", host, err)
	}
	a.tls[host] = tlsTransport{fingerprint: fp, rt: rt}
	return rt, nil
}

func newTLSTransport(base http.RoundTripper, verify bool, cas []string) (http.RoundTripper, error) {
	var t *http.Transport
	if b, ok := base.(*http.Transport); ok {
		t = b.Clone()
	} else {
		t = remote.DefaultTransport.(*http.Transport).Clone()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	}
	if !verify {
		cfg.InsecureSkipVerify = true // the admin chose verify_tls: false for this host only
	}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, ca := range cas {
			if !pool.AppendCertsFromPEM([]byte(ca)) {
				return nil, errors.New("ca_cert holds no PEM certificate")
			}
		}
		cfg.RootCAs = pool
	}
	t.TLSClientConfig = cfg
	return t, nil
}

// registryOf returns the go-containerregistry registry of a credential.
func registryOf(c Credential) (name.Registry, error) {
	host := c.Host()
	if host == buildgate.DockerHub {
		host = name.DefaultRegistry
	}
	return name.NewRegistry(host, name.StrictValidation)
}
