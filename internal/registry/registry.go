// Package registry is buildgate's adapter to container registries, built on
// go-containerregistry: it parses references, resolves them to digests and
// opens images where their registries serve them, within size limits; it
// turns uploaded archives into OCI layouts. Auth serves stored credentials
// to pulls (a keychain, per-registry TLS, ECR tokens) and checks them with
// a login.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/netguard"
)

// Config says how the client talks to registries and how much it pulls.
type Config struct {
	// Keychain gives credentials per registry; nil means anonymous.
	Keychain authn.Keychain
	// Transport is the HTTP transport; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Platform is the image chosen from an index.
	Platform v1.Platform
	// MaxLayerSize and MaxImageSize bound compressed sizes in bytes; 0 means
	// no limit.
	MaxLayerSize int64
	MaxImageSize int64
	// UserAgent is sent with every request.
	UserAgent string
	// Log receives registry errors in full (callers get them without the
	// registry's answer); nil means discard.
	Log *slog.Logger
}

// DefaultConfig returns linux/amd64, anonymous access, 2 GiB a layer and
// 8 GiB an image.
func DefaultConfig() Config {
	return Config{
		Platform:     v1.Platform{OS: "linux", Architecture: "amd64"},
		MaxLayerSize: 2 << 30,
		MaxImageSize: 8 << 30,
		UserAgent:    "buildgate",
	}
}

// Client resolves and pulls images.
type Client struct {
	cfg Config
}

// New returns a client with cfg.
func New(cfg Config) *Client {
	if cfg.Platform.OS == "" {
		cfg.Platform = DefaultConfig().Platform
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg}
}

// ParseReference parses a tag or digest reference such as
// "host/repo:tag" or "host/repo@sha256:...". A missing registry means
// docker.io and a missing tag means latest. The reference must follow the
// distribution reference grammar (github.com/distribution/reference):
// lowercase path components joined by single separators, so no empty or
// dot segment ("team-a/../team-b") can reach a credential match.
func ParseReference(s string) (name.Reference, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, buildgate.Errorf(buildgate.EINVALID, "image reference is empty")
	}
	if strings.Contains(s, "://") {
		return nil, buildgate.Errorf(buildgate.EINVALID, "invalid image reference %q: write it without a scheme, as host/repository:tag", s)
	}
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "invalid image reference %q: %v (%s)", s, err, grammar)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "invalid image reference %q: %v (%s)", s, err, grammar)
	}
	return ref, nil
}

// grammar is the reference grammar, in words, for refusals.
const grammar = "want host[:port]/path/name[:tag][@sha256:digest], path components of lowercase letters and digits joined by single ., _, __ or -"

// FullTag returns the normalised "registry/repository:tag" of a tag
// reference the way Anchore spells it: docker.io when no registry is named,
// latest when no tag is, and no library/ inserted where the user wrote none.
// input is what ref was parsed from. It returns "" for a digest reference.
func FullTag(input string, ref name.Reference) string {
	t, ok := ref.(name.Tag)
	if !ok {
		return ""
	}
	registry := t.RegistryStr()
	repo := t.RepositoryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
		// go-containerregistry inserts library/ for official images; keep
		// the repository as the user wrote it.
		if !strings.Contains(input, "library/") {
			repo = strings.TrimPrefix(repo, "library/")
		}
	}
	return fmt.Sprintf("%s/%s:%s", registry, repo, t.TagStr())
}

// Resolved is a reference resolved to the image the gate will analyse.
type Resolved struct {
	Ref name.Reference
	// Digest is the digest of the image manifest (for an index, of the
	// manifest chosen for the platform).
	Digest string
	// IndexDigest is the index's digest when the reference named one.
	IndexDigest string
}

func (c *Client) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(c.cfg.Platform)}
	if c.cfg.Keychain != nil {
		opts = append(opts, remote.WithAuthFromKeychain(c.cfg.Keychain))
	}
	if c.cfg.Transport != nil {
		opts = append(opts, remote.WithTransport(c.cfg.Transport))
	}
	if c.cfg.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.cfg.UserAgent))
	}
	return opts
}

// Resolve finds the digest of the image that ref names. From an index it
// picks the image for the configured platform; anything that is not a
// container image is refused.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (Resolved, error) {
	return c.resolve(ref, c.options(ctx))
}

// ResolveOptions change how ResolveWith resolves one reference.
type ResolveOptions struct {
	// Platform picks the image of an index; zero: the client's.
	Platform v1.Platform
	// Auth, when set, authenticates to the reference's registry alone, as
	// OpenAuthorized does: stored credentials play no part.
	Auth *Authorization
}

// ResolveWith resolves like Resolve, for another platform or with an
// authorization of its own.
func (c *Client) ResolveWith(ctx context.Context, ref name.Reference, o ResolveOptions) (Resolved, error) {
	cc := c
	if o.Platform.OS != "" {
		cc = &Client{cfg: c.cfg}
		cc.cfg.Platform = o.Platform
	}
	if o.Auth == nil {
		return cc.resolve(ref, cc.options(ctx))
	}
	opts, ac, err := cc.authorized(ctx, ref, *o.Auth)
	if err != nil {
		return Resolved{}, err
	}
	r, err := ac.resolve(ref, opts)
	return r, o.Auth.redact(err)
}

// ParsePlatform parses "os/architecture[/variant]", e.g. linux/arm64.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(strings.TrimSpace(s))
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return v1.Platform{}, buildgate.Errorf(buildgate.EINVALID, "invalid platform %q: want os/architecture[/variant], e.g. linux/arm64", s)
	}
	return *p, nil
}

func (c *Client) resolve(ref name.Reference, opts []remote.Option) (Resolved, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return Resolved{}, c.describe(ref, err)
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return Resolved{}, c.describe(ref, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return Resolved{}, c.describe(ref, err)
		}
		var seen []string
		for _, d := range m.Manifests {
			if d.Platform == nil {
				continue
			}
			seen = append(seen, d.Platform.String())
			if d.Platform.Satisfies(c.cfg.Platform) && d.MediaType.IsImage() {
				return Resolved{Ref: ref, Digest: d.Digest.String(), IndexDigest: desc.Digest.String()}, nil
			}
		}
		return Resolved{}, buildgate.Errorf(buildgate.EINVALID, "%s is an index with no %s image (platforms: %s)",
			ref, c.cfg.Platform.String(), strings.Join(seen, ", "))
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return Resolved{}, c.describe(ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return Resolved{}, c.describe(ref, err)
		}
		if !isImageConfig(m.Config.MediaType) {
			return Resolved{}, buildgate.Errorf(buildgate.EINVALID, "%s is not a container image: its config media type is %q", ref, m.Config.MediaType)
		}
		return Resolved{Ref: ref, Digest: desc.Digest.String()}, nil
	default:
		return Resolved{}, buildgate.Errorf(buildgate.EINVALID, "%s is not a container image: its manifest media type is %q", ref, desc.MediaType)
	}
}

func isImageConfig(mt types.MediaType) bool {
	return mt == types.DockerConfigJSON || mt == types.OCIConfigJSON || mt == ""
}

// Open returns the image r names as its registry serves it, for a
// cataloger that reads each layer once, as it downloads: no layout is
// written. Sizes are checked against the limits first, and each blob
// against its digest and size as it is read; an error reading one names
// the image.
func (c *Client) Open(ctx context.Context, r Resolved) (v1.Image, error) {
	return c.open(r, c.options(ctx), func(err error) error { return err })
}

// open opens the image r names with opts; its errors are described, then
// passed through redact.
func (c *Client) open(r Resolved, opts []remote.Option, redact func(error) error) (v1.Image, error) {
	describe := func(err error) error { return redact(c.describe(r.Ref, err)) }
	img, err := c.remoteImage(r, opts, describe)
	if err != nil {
		return nil, err
	}
	return describedImage{Image: img, describe: describe}, nil
}

// remoteImage reads the manifest and config of the image r names, its
// errors passed through describe, and checks its sizes against the limits.
func (c *Client) remoteImage(r Resolved, opts []remote.Option, describe func(error) error) (v1.Image, error) {
	img, err := remote.Image(r.Ref.Context().Digest(r.Digest), opts...)
	if err != nil {
		return nil, describe(err)
	}
	if err := c.CheckSize(img); err != nil {
		return nil, err
	}
	return img, nil
}

// describedImage is an image whose layers' errors are described.
type describedImage struct {
	v1.Image
	describe func(error) error
}

func (i describedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, i.describe(err)
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = describedLayer{Layer: l, describe: i.describe}
	}
	return out, nil
}

// describedLayer is a layer whose reads fail with described errors.
type describedLayer struct {
	v1.Layer
	describe func(error) error
}

func (l describedLayer) Compressed() (io.ReadCloser, error) { return l.read(l.Layer.Compressed()) }

func (l describedLayer) Uncompressed() (io.ReadCloser, error) { return l.read(l.Layer.Uncompressed()) }

func (l describedLayer) read(rc io.ReadCloser, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, l.describe(err)
	}
	return describedReader{ReadCloser: rc, describe: l.describe}, nil
}

type describedReader struct {
	io.ReadCloser
	describe func(error) error
}

func (r describedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = r.describe(err)
	}
	return n, err
}

// CheckSize refuses an image whose manifest declares a layer or a total
// larger than the limits.
func (c *Client) CheckSize(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	var total int64
	for _, l := range m.Layers {
		if c.cfg.MaxLayerSize > 0 && l.Size > c.cfg.MaxLayerSize {
			return buildgate.Errorf(buildgate.EINVALID, "layer %s is %d bytes, over the limit of %d bytes", l.Digest, l.Size, c.cfg.MaxLayerSize)
		}
		total += l.Size
	}
	if c.cfg.MaxImageSize > 0 && total > c.cfg.MaxImageSize {
		return buildgate.Errorf(buildgate.EINVALID, "image is %d bytes compressed, over the limit of %d bytes", total, c.cfg.MaxImageSize)
	}
	return nil
}

// Unreachable is the one answer callers get when the gate cannot connect
// to a registry: a closed port, a filtered one and an address the private
// network guard refuses look alike, so submissions cannot map the gate's
// networks. The cause is logged.
const Unreachable = "cannot connect to it (closed, filtered, or in a private network, which needs " + netguard.AllowFlag + "); the gate's log has the cause"

// describe turns a registry error into an *buildgate.Error whose message names
// the reference and what failed, never the registry's answer body (a
// reference may point at any HTTP service): the full error is logged.
func (c *Client) describe(ref name.Reference, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	reg := ref.Context().RegistryStr()
	c.cfg.Log.Warn("registry request failed", "registry", reg, "ref", ref.String(), "err", err)
	// A TLS failure first: the plain-HTTP fallback of a loopback registry
	// adds a less telling error beside it.
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &uaErr) || errors.As(err, &hostErr) || errors.As(err, &certErr) {
		return buildgate.Errorf(buildgate.EINVALID, "registry %s of %s: its TLS certificate is not trusted (%s): store its CA as the ca_cert of its registry credentials, or set verify_tls: false",
			reg, ref, tlsReason(err))
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return buildgate.Errorf(buildgate.EINVALID, "%s not found in registry %s (%s)", ref, reg, d.Code)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return buildgate.Errorf(buildgate.EINVALID, "registry %s refused access to %s (%s)", reg, ref, d.Code)
			}
		}
		switch terr.StatusCode {
		case http.StatusNotFound:
			return buildgate.Errorf(buildgate.EINVALID, "%s not found in registry %s", ref, reg)
		case http.StatusUnauthorized, http.StatusForbidden:
			return buildgate.Errorf(buildgate.EINVALID, "registry %s refused access to %s (HTTP %d)", reg, ref, terr.StatusCode)
		}
		return buildgate.Errorf(buildgate.EINVALID, "registry %s answered HTTP %d for %s; the gate's log has its answer", reg, terr.StatusCode, ref)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return buildgate.Errorf(buildgate.EINVALID, "registry host %q of %s cannot be resolved", reg, ref)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, netguard.ErrRefused) {
		return buildgate.Errorf(buildgate.EINVALID, "registry %s of %s: %s", reg, ref, Unreachable)
	}
	return buildgate.Errorf(buildgate.EINVALID, "pulling %s: %v", ref, err)
}
