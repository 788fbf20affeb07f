package registry

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Authorization is a registry authorization given with one pull (Harbor's
// scan request), not stored: the HTTP Authorization header for one host.
type Authorization struct {
	// Host is the registry's "host[:port]".
	Host string
	// Header is "Basic <base64 user:password>" or "Bearer <token>".
	Header secret.Secret
}

// authenticator turns the header into go-containerregistry's terms: a
// Basic one is sent as is (and exchanged for a token when the registry
// asks for one), a Bearer one is the registry token itself.
func (a Authorization) authenticator() (authn.Authenticator, error) {
	scheme, rest, _ := strings.Cut(string(a.Header), " ")
	rest = strings.TrimSpace(rest)
	switch {
	case rest == "":
	case strings.EqualFold(scheme, "Basic"):
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil && strings.Contains(string(b), ":") {
			return authn.FromConfig(authn.AuthConfig{Auth: rest}), nil
		}
		return nil, buildgate.Errorf(buildgate.EINVALID, "the Basic registry authorization is not base64 of user:password")
	case strings.EqualFold(scheme, "Bearer"):
		return authn.FromConfig(authn.AuthConfig{RegistryToken: rest}), nil
	}
	return nil, buildgate.Errorf(buildgate.EINVALID, `the registry authorization must be "Basic <base64 user:password>" or "Bearer <token>"`)
}

// secrets are the strings an error message must not quote.
func (a Authorization) secrets() []string {
	_, rest, _ := strings.Cut(string(a.Header), " ")
	out := []string{string(a.Header), strings.TrimSpace(rest)}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest)); err == nil {
		_, pass, _ := strings.Cut(string(b), ":")
		out = append(out, string(b), pass)
	}
	return out
}

// OpenAuthorized is Open, authenticating with a alone: stored
// credentials play no part, and the header goes only to requests for
// a.Host, never to a token service or blob store on another host (such a
// registry then answers as to an anonymous client). r must name an image
// on a.Host.
func (c *Client) OpenAuthorized(ctx context.Context, r Resolved, a Authorization) (v1.Image, error) {
	opts, cc, err := c.authorized(ctx, r.Ref, a)
	if err != nil {
		return nil, err
	}
	return cc.open(r, opts, a.redact)
}

// redact takes the authorization out of an error's message.
func (a Authorization) redact(err error) error {
	if err != nil && buildgate.ErrorCode(err) != buildgate.EINTERNAL {
		return buildgate.Errorf(buildgate.ErrorCode(err), "%s", secret.Redact(buildgate.ErrorMessage(err), a.secrets()...))
	}
	return err
}

// authorized returns the options of a request to ref's registry with a
// alone, and a client whose log redacts a.
func (c *Client) authorized(ctx context.Context, ref name.Reference, a Authorization) ([]remote.Option, *Client, error) {
	if !strings.EqualFold(ref.Context().RegistryStr(), a.Host) {
		return nil, nil, buildgate.Errorf(buildgate.EINVALID, "%s is not on registry %s, which the authorization is for", ref, a.Host)
	}
	auth, err := a.authenticator()
	if err != nil {
		return nil, nil, err
	}
	inner := c.cfg.Transport
	if inner == nil {
		inner = remote.DefaultTransport
	}
	opts := []remote.Option{
		remote.WithContext(ctx), remote.WithPlatform(c.cfg.Platform),
		remote.WithAuthFromKeychain(hostKeychain{host: a.Host, auth: auth}),
		remote.WithTransport(onlyTo{host: a.Host, inner: inner}),
	}
	if c.cfg.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.cfg.UserAgent))
	}
	// The registry's answers are logged in full: redact the header from
	// them too, should a registry echo it.
	cc := &Client{cfg: c.cfg}
	cc.cfg.Log = slog.New(redacting{Handler: c.cfg.Log.Handler(), secrets: a.secrets()})
	return opts, cc, nil
}

// redacting is a log handler that redacts secrets from messages and from
// string and other non-scalar attribute values (errors).
type redacting struct {
	slog.Handler
	secrets []string
}

func (h redacting) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, secret.Redact(r.Message, h.secrets...), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.redact(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redacting) redact(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, 0, len(attrs))
		for _, g := range attrs {
			out = append(out, h.redact(g))
		}
		return slog.Group(a.Key, out...)
	case slog.KindString, slog.KindAny:
		return slog.String(a.Key, secret.Redact(v.String(), h.secrets...))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, h.redact(a))
	}
	return redacting{Handler: h.Handler.WithAttrs(out), secrets: h.secrets}
}

func (h redacting) WithGroup(name string) slog.Handler {
	return redacting{Handler: h.Handler.WithGroup(name), secrets: h.secrets}
}

// hostKeychain gives auth for host and nothing for any other registry.
type hostKeychain struct {
	host string
	auth authn.Authenticator
}

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if strings.EqualFold(r.RegistryStr(), k.host) {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// onlyTo drops the Authorization header of requests to any host but host.
type onlyTo struct {
	host  string
	inner http.RoundTripper
}

func (t onlyTo) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" && !strings.EqualFold(req.URL.Host, t.host) {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	return t.inner.RoundTrip(req)
}

// ParseDigestReference parses "host/repository@sha256:..." as a pull
// reference, over plain HTTP when plainHTTP.
func ParseDigestReference(s string, plainHTTP bool) (name.Digest, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	d, err := name.NewDigest(s, opts...)
	if err != nil {
		return name.Digest{}, buildgate.Errorf(buildgate.EINVALID, "invalid pull reference %q: %v", s, err)
	}
	return d, nil
}
