package alert

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// ChannelInput is a channel as a user writes it, with its secret: a
// webhook's signing secret, a Slack incoming-webhook URL (given as the
// channel's url), or an SMTP password.
type ChannelInput struct {
	buildgate.Channel
	Secret secret.Secret
}

// Limits of a channel's fields.
const (
	maxNameSize   = 256
	maxSecretSize = 4 << 10
	maxURLSize    = 4 << 10
	maxCACertSize = 1 << 20
	maxRecipients = 50
)

// CreateChannel validates a channel and stores it with its secret sealed.
func (s *Service) CreateChannel(ctx context.Context, in ChannelInput) (*buildgate.Channel, error) {
	ch, key, err := normalizeChannel(in, nil)
	if err != nil {
		return nil, err
	}
	// The id first: the secrets are sealed for the channel's record.
	ch.ID = buildgate.NewID()
	sealed, err := s.seal(key, ch.ID)
	if err != nil {
		return nil, err
	}
	plainURL, sealedURL, err := s.sealURL(&ch)
	if err != nil {
		return nil, err
	}
	out, err := s.store.CreateChannel(ctx, ch, sealed)
	if err != nil {
		return nil, err
	}
	if sealedURL != "" {
		if err := s.store.SetChannelURL(ctx, out.ID, sealedURL, ch.URL); err != nil {
			if derr := s.store.DeleteChannel(ctx, out.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("removing the half-made channel %s: %w", out.ID, derr))
			}
			return nil, err
		}
	}
	s.log.Info("channel created", "channel", out.ID, "name", out.Name, "type", out.Type, "url", secret.RedactURL(plainURL))
	return display(out), nil
}

// UpdateChannel replaces a channel's settings with in's. Empty fields
// (and an empty secret) keep their stored values; the type cannot change.
func (s *Service) UpdateChannel(ctx context.Context, id string, in ChannelInput) (*buildgate.Channel, error) {
	cur, err := s.store.Channel(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.openURL(ctx, cur); err != nil {
		return nil, err
	}
	ch, key, err := normalizeChannel(in, cur)
	if err != nil {
		return nil, err
	}
	ch.ID = id
	sealed, err := s.seal(key, id)
	if err != nil {
		return nil, err
	}
	_, sealedURL, err := s.sealURL(&ch)
	if err != nil {
		return nil, err
	}
	// The record first: a refusal there (a name taken) changes nothing.
	out, err := s.store.UpdateChannel(ctx, ch, sealed)
	if err != nil {
		return nil, err
	}
	if sealedURL != "" {
		if err := s.store.SetChannelURL(ctx, id, sealedURL, ch.URL); err != nil {
			return nil, err
		}
		out.URL = ch.URL
	}
	s.log.Info("channel updated", "channel", out.ID, "name", out.Name, "secret_changed", sealed != "")
	return display(out), nil
}

// Channel returns one channel, without its secret and with its URL
// redacted.
func (s *Service) Channel(ctx context.Context, id string) (*buildgate.Channel, error) {
	ch, err := s.store.Channel(ctx, id)
	if err != nil {
		return nil, err
	}
	return display(ch), nil
}

// Channels lists the channels, without their secrets and with their URLs
// redacted.
func (s *Service) Channels(ctx context.Context) ([]buildgate.Channel, error) {
	list, err := s.store.ListChannels(ctx)
	for i := range list {
		display(&list[i])
	}
	return list, err
}

// display redacts a webhook channel's URL for answers: webhook URLs often
// carry a token in their userinfo or query. Records keep the redacted form
// already (the URL itself is sealed); this covers a record whose URL is not
// sealed yet. A Slack channel's record only ever holds its scheme and host.
func display(ch *buildgate.Channel) *buildgate.Channel {
	if ch == nil || ch.Type != buildgate.ChannelWebhook {
		return ch
	}
	// RedactURL of an already redacted URL with userinfo does not parse
	// ("[" in userinfo) and comes back whole-redacted: keep it then.
	if r := secret.RedactURL(ch.URL); r != secret.Redacted {
		ch.URL = r
	}
	return ch
}

// sealURL seals a webhook channel's URL and puts its redacted form in
// ch.URL; it returns the URL and its sealed form ("" for other types).
func (s *Service) sealURL(ch *buildgate.Channel) (plain, sealed string, err error) {
	if ch.Type != buildgate.ChannelWebhook || ch.URL == "" {
		return "", "", nil
	}
	plain = ch.URL
	if sealed, err = s.sealer.Seal([]byte(plain), secret.ChannelURL(ch.ID)); err != nil {
		return "", "", fmt.Errorf("sealing a channel url: %w", err)
	}
	ch.URL = secret.RedactURL(plain)
	return plain, sealed, nil
}

// openURL puts a webhook channel's URL, opened, in ch.URL.
func (s *Service) openURL(ctx context.Context, ch *buildgate.Channel) error {
	if ch.Type != buildgate.ChannelWebhook {
		return nil
	}
	sealed, err := s.store.ChannelURL(ctx, ch.ID)
	if err != nil || sealed == "" {
		return err
	}
	plain, err := s.sealer.Open(sealed, secret.ChannelURL(ch.ID))
	if err != nil {
		return failure("opening the channel's url: " + err.Error())
	}
	ch.URL = string(plain)
	return nil
}

// SealChannelURLs seals the URL of every webhook channel stored before
// URLs were sealed (migration 006) and leaves the redacted form in its
// record. The gate runs it at start; it returns how many it sealed.
func (s *Service) SealChannelURLs(ctx context.Context) (int, error) {
	list, err := s.store.ListChannels(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ch := range list {
		if ch.Type != buildgate.ChannelWebhook || ch.URL == "" {
			continue
		}
		if sealed, err := s.store.ChannelURL(ctx, ch.ID); err != nil || sealed != "" {
			if err != nil {
				return n, err
			}
			continue
		}
		_, sealed, err := s.sealURL(&ch)
		if err != nil {
			return n, err
		}
		if err := s.store.SetChannelURL(ctx, ch.ID, sealed, ch.URL); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// DeleteChannel deletes a channel that no alert or subscription names.
func (s *Service) DeleteChannel(ctx context.Context, id string) error {
	if err := s.store.DeleteChannel(ctx, id); err != nil {
		return err
	}
	s.log.Info("channel deleted", "channel", id)
	return nil
}

// seal seals the secret of channel id ("" when there is none).
func (s *Service) seal(key secret.Secret, id string) (string, error) {
	if key == "" {
		return "", nil
	}
	sealed, err := s.sealer.Seal([]byte(key), secret.ChannelSecret(id))
	if err != nil {
		return "", fmt.Errorf("sealing a channel secret: %w", err)
	}
	return sealed, nil
}

// TestResult is the outcome of a test message.
type TestResult struct {
	OK         bool
	StatusCode int
	Answer     string
	Error      string
	Duration   time.Duration
}

// TestChannel sends a test message to a channel now, outside the outbox,
// and reports the channel's answer.
func (s *Service) TestChannel(ctx context.Context, id string) (*TestResult, error) {
	ch, err := s.store.Channel(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.openURL(ctx, ch); err != nil {
		return nil, err
	}
	key, err := s.channelSecret(ctx, id)
	if err != nil {
		return nil, err
	}
	sender := s.senders[ch.Type]
	if sender == nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "no sender for channel type %q", ch.Type)
	}
	p := &payload{Type: "test", CreatedAt: s.Now(), DeliveryID: "test-" + buildgate.NewID()[:12]}
	msg := render(p)
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	res, err := sender.Send(sctx, *ch, key, msg)
	out := &TestResult{OK: err == nil, StatusCode: res.StatusCode, Duration: time.Since(start),
		Answer: truncate(secret.Redact(res.Answer, string(key)), maxAnswer)}
	if err != nil {
		out.Error = truncate(secret.Redact(err.Error(), string(key)), maxError)
	}
	s.log.Info("channel test message sent", "channel", id, "ok", out.OK, "status_code", out.StatusCode, "err", out.Error)
	return out, nil
}

// normalizeChannel validates a new channel (cur nil) or an update of cur,
// and returns the record to store and the secret to seal ("" keeps the
// stored one on update).
func normalizeChannel(in ChannelInput, cur *buildgate.Channel) (buildgate.Channel, secret.Secret, error) {
	ch := in.Channel
	key := secret.Secret(strings.TrimSpace(string(in.Secret)))
	if cur != nil {
		if ch.Type != "" && ch.Type != cur.Type {
			return ch, "", buildgate.Errorf(buildgate.EINVALID, "a channel's type cannot change (it is %s): delete it and create another", cur.Type)
		}
		ch.Type = cur.Type
		keep := func(v *string, old string) {
			if strings.TrimSpace(*v) == "" {
				*v = old
			}
		}
		keep(&ch.Name, cur.Name)
		keep(&ch.SMTPHost, cur.SMTPHost)
		keep(&ch.TLS, cur.TLS)
		keep(&ch.CACert, cur.CACert)
		keep(&ch.Username, cur.Username)
		keep(&ch.From, cur.From)
		if ch.SMTPPort == 0 {
			ch.SMTPPort = cur.SMTPPort
		}
		if len(ch.To) == 0 {
			ch.To = cur.To
		}
		if ch.Type != buildgate.ChannelSlack {
			keep(&ch.URL, cur.URL)
			// The redacted URL answers and the console show, sent back
			// unchanged, keeps the stored one.
			if ch.Type == buildgate.ChannelWebhook && strings.TrimSpace(ch.URL) == secret.RedactURL(cur.URL) {
				ch.URL = cur.URL
			}
		}
	}
	ch.Name = strings.TrimSpace(ch.Name)
	ch.Type = strings.ToLower(strings.TrimSpace(ch.Type))
	switch {
	case ch.Name == "":
		return ch, "", buildgate.Errorf(buildgate.EINVALID, "a channel needs a name")
	case len(ch.Name) > maxNameSize:
		return ch, "", buildgate.Errorf(buildgate.EINVALID, "the name is longer than %d bytes", maxNameSize)
	case !slices.Contains(buildgate.ChannelTypes(), ch.Type):
		return ch, "", buildgate.Errorf(buildgate.EINVALID, "unknown channel type %q (want one of %s)", ch.Type, strings.Join(buildgate.ChannelTypes(), ", "))
	case len(key) > maxSecretSize:
		return ch, "", buildgate.Errorf(buildgate.EINVALID, "the secret is longer than %d bytes", maxSecretSize)
	}
	switch ch.Type {
	case buildgate.ChannelWebhook:
		ch.SMTPHost, ch.SMTPPort, ch.TLS, ch.CACert, ch.Username, ch.From, ch.To = "", 0, "", "", "", "", nil
		if err := checkURL("url", ch.URL); err != nil {
			return ch, "", err
		}
		if key == "" && (cur == nil || cur.SecretSetAt == nil) {
			return ch, "", buildgate.Errorf(buildgate.EINVALID, "a webhook channel needs a secret: its deliveries are signed with it (%s)", "X-Buildgate-Signature")
		}
	case buildgate.ChannelSlack:
		ch.SMTPHost, ch.SMTPPort, ch.TLS, ch.CACert, ch.Username, ch.From, ch.To = "", 0, "", "", "", "", nil
		// The incoming-webhook URL is the secret; the record keeps its
		// scheme and host only.
		if u := strings.TrimSpace(ch.URL); u != "" {
			if err := checkURL("url", u); err != nil {
				return ch, "", err
			}
			key = secret.Secret(u)
		} else if key != "" {
			if err := checkURL("secret", string(key)); err != nil {
				return ch, "", err
			}
		}
		switch {
		case key != "":
			ch.URL = redactURL(string(key))
		case cur != nil && cur.SecretSetAt != nil:
			ch.URL = cur.URL
		default:
			return ch, "", buildgate.Errorf(buildgate.EINVALID, "a slack channel needs the url of its incoming webhook")
		}
	case buildgate.ChannelEmail:
		ch.URL = ""
		if err := checkEmail(&ch, key, cur); err != nil {
			return ch, "", err
		}
	}
	return ch, key, nil
}

// checkURL accepts an absolute http or https URL.
func checkURL(field, raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return buildgate.Errorf(buildgate.EINVALID, "%s is required", field)
	}
	if len(raw) > maxURLSize {
		return buildgate.Errorf(buildgate.EINVALID, "%s is longer than %d bytes", field, maxURLSize)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may be a secret: do not quote it.
		return buildgate.Errorf(buildgate.EINVALID, "%s must be an absolute http or https URL", field)
	}
	return nil
}

// redactURL keeps a URL's scheme and host.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func checkEmail(ch *buildgate.Channel, key secret.Secret, cur *buildgate.Channel) error {
	ch.SMTPHost = strings.TrimSpace(ch.SMTPHost)
	ch.TLS = strings.ToLower(strings.TrimSpace(ch.TLS))
	if ch.TLS == "" {
		ch.TLS = buildgate.SMTPStartTLS
	}
	switch {
	case ch.SMTPHost == "" || strings.ContainsAny(ch.SMTPHost, "/ []") || strings.Contains(ch.SMTPHost, ":") && net.ParseIP(ch.SMTPHost) == nil:
		return buildgate.Errorf(buildgate.EINVALID, "an email channel needs smtp_host, a host name or address without a port (give smtp_port)")
	case ch.SMTPPort < 0 || ch.SMTPPort > 65535:
		return buildgate.Errorf(buildgate.EINVALID, "smtp_port %d is not a port", ch.SMTPPort)
	case ch.TLS != buildgate.SMTPStartTLS && ch.TLS != buildgate.SMTPTLS && ch.TLS != buildgate.SMTPNone:
		return buildgate.Errorf(buildgate.EINVALID, "tls must be starttls, tls or none, not %q", ch.TLS)
	case ch.TLS == buildgate.SMTPNone && ch.Username != "":
		return buildgate.Errorf(buildgate.EINVALID, "tls none would send the SMTP password in plain text: use starttls or tls")
	case len(ch.To) == 0:
		return buildgate.Errorf(buildgate.EINVALID, "an email channel needs at least one address in to")
	case len(ch.To) > maxRecipients:
		return buildgate.Errorf(buildgate.EINVALID, "at most %d addresses in to", maxRecipients)
	case len(ch.CACert) > maxCACertSize:
		return buildgate.Errorf(buildgate.EINVALID, "ca_cert is larger than %d bytes", maxCACertSize)
	}
	if ch.SMTPPort == 0 {
		ch.SMTPPort = 587
		if ch.TLS == buildgate.SMTPTLS {
			ch.SMTPPort = 465
		}
	}
	from, err := mail.ParseAddress(ch.From)
	if err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "from %q is not an email address", ch.From)
	}
	ch.From = from.Address
	for i, t := range ch.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return buildgate.Errorf(buildgate.EINVALID, "to %q is not an email address", t)
		}
		ch.To[i] = a.Address
	}
	if ch.Username != "" && key == "" && (cur == nil || cur.SecretSetAt == nil) {
		return buildgate.Errorf(buildgate.EINVALID, "an email channel with a username needs its password")
	}
	if ch.CACert != "" {
		rest, n := []byte(ch.CACert), 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || err != nil {
				return buildgate.Errorf(buildgate.EINVALID, "ca_cert holds a PEM block that is not a certificate")
			}
			n++
		}
		if n == 0 {
			return buildgate.Errorf(buildgate.EINVALID, "ca_cert holds no PEM certificate")
		}
	}
	return nil
}
