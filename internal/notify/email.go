package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Email sends a message as plain-text mail through the channel's SMTP
// server: STARTTLS (required unless the channel's tls is "none"), or TLS
// from the start ("tls"), then AUTH PLAIN with the channel's username and
// password when it has a username.
type Email struct {
	// HelloName is the name sent with EHLO; empty means "localhost".
	HelloName string
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
	// Dial connects to the SMTP server; nil means a plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Default SMTP ports.
const (
	SubmissionPort = 587 // STARTTLS
	SMTPSPort      = 465 // TLS from the start
)

// Send delivers msg to every address in ch.To.
func (e Email) Send(ctx context.Context, ch buildgate.Channel, password secret.Secret, msg buildgate.Message) (buildgate.SendResult, error) {
	if ch.SMTPHost == "" || ch.From == "" || len(ch.To) == 0 {
		return buildgate.SendResult{}, permanentf("email channel %q needs smtp_host, from and to", ch.Name)
	}
	mode := ch.TLS
	if mode == "" {
		mode = buildgate.SMTPStartTLS
	}
	port := ch.SMTPPort
	if port == 0 {
		port = SubmissionPort
		if mode == buildgate.SMTPTLS {
			port = SMTPSPort
		}
	}
	tlsConf, err := tlsConfig(ch)
	if err != nil {
		return buildgate.SendResult{}, err
	}
	addr := net.JoinHostPort(ch.SMTPHost, strconv.Itoa(port))
	dial := e.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return buildgate.SendResult{}, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return buildgate.SendResult{}, fmt.Errorf("setting a deadline on the connection to %s: %w", addr, err)
		}
	}
	if mode == buildgate.SMTPTLS {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return buildgate.SendResult{}, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, ch.SMTPHost)
	if err != nil {
		conn.Close()
		return smtpResult(err, "greeting of "+addr)
	}
	defer c.Close()
	hello := e.HelloName
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return smtpResult(err, "EHLO")
	}
	if mode == buildgate.SMTPStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return buildgate.SendResult{}, permanentf("%s does not offer STARTTLS; set the channel's tls to \"tls\" for a TLS port", addr)
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return smtpResult(err, "STARTTLS")
		}
	}
	if ch.Username != "" {
		if mode == buildgate.SMTPNone {
			return buildgate.SendResult{}, permanentf("email channel %q would send its password in plain text: use tls starttls or tls", ch.Name)
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return buildgate.SendResult{}, permanentf("%s offers no AUTH", addr)
		}
		if err := c.Auth(smtp.PlainAuth("", ch.Username, string(password), ch.SMTPHost)); err != nil {
			return smtpResult(err, "AUTH")
		}
	}
	if err := c.Mail(ch.From); err != nil {
		return smtpResult(err, "MAIL FROM")
	}
	for _, to := range ch.To {
		if err := c.Rcpt(to); err != nil {
			return smtpResult(err, "RCPT TO "+to)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpResult(err, "DATA")
	}
	if _, err := w.Write(e.mail(ch, msg)); err != nil {
		return smtpResult(err, "DATA")
	}
	if err := w.Close(); err != nil {
		return smtpResult(err, "end of DATA")
	}
	_ = c.Quit() // the message is accepted; a failed goodbye changes nothing
	return buildgate.SendResult{StatusCode: 250, Answer: "accepted for " + strings.Join(ch.To, ", ")}, nil
}

// tlsConfig trusts the system's roots and the channel's CA bundle.
func tlsConfig(ch buildgate.Channel) (*tls.Config, error) {
	conf := &tls.Config{ServerName: ch.SMTPHost, MinVersion: tls.VersionTLS12}
	if ch.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(ch.CACert)) {
			return nil, permanentf("email channel %q: ca_cert holds no PEM certificate", ch.Name)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// smtpResult turns an SMTP error into a result: a 5xx reply is permanent.
func smtpResult(err error, step string) (buildgate.SendResult, error) {
	var te *textproto.Error
	if errors.As(err, &te) {
		res := buildgate.SendResult{StatusCode: te.Code, Answer: truncate(te.Msg, MaxAnswer)}
		return res, &Error{StatusCode: te.Code, Answer: res.Answer, Msg: fmt.Sprintf("%s: %d %s", step, te.Code, res.Answer), permanent: te.Code >= 500}
	}
	return buildgate.SendResult{}, fmt.Errorf("%s: %w", step, err)
}

// mail renders msg as a plain-text, quoted-printable message.
func (e Email) mail(ch buildgate.Channel, msg buildgate.Message) []byte {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", ch.From)
	header("To", strings.Join(ch.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(msg.Title)))
	header("Date", now().Format(time.RFC1123Z))
	if msg.DeliveryID != "" {
		header("Message-ID", "<"+msg.DeliveryID+"@buildgate>")
		header(DeliveryHeader, msg.DeliveryID)
	}
	header(EventHeader, oneLine(msg.Event))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(EmailText(msg))) // writes to a bytes.Buffer cannot fail
	_ = qp.Close()
	return b.Bytes()
}

// EmailText is the plain-text body of msg: its text, then its fields.
func EmailText(msg buildgate.Message) string {
	var b strings.Builder
	b.WriteString(msg.Text)
	b.WriteString("\r\n")
	if len(msg.Fields) > 0 {
		b.WriteString("\r\n")
		for _, f := range msg.Fields {
			fmt.Fprintf(&b, "%s: %s\r\n", f.Name, strings.ReplaceAll(f.Value, "\n", "\r\n  "))
		}
	}
	b.WriteString("\r\n-- \r\nbuildgate · " + msg.Event + "\r\n")
	return b.String()
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
