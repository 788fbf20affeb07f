// Package notifytest runs real receivers of notifications inside a test:
// an SMTP server (github.com/emersion/go-smtp) that offers STARTTLS with a
// certificate made for the test and accepts AUTH PLAIN only over TLS, and
// a webhook receiver that checks signatures and can be taken down and
// brought back on the same address.
package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/buildgate/buildgate/internal/notify"
)

// Certificate returns a self-signed certificate for 127.0.0.1 and
// localhost, and its PEM, to trust as a channel's ca_cert.
func Certificate(tb testing.TB) (tls.Certificate, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "buildgate test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, string(certPEM)
}

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	// User is the user name the client authenticated as.
	User string
	// TLS says whether the message came over TLS.
	TLS bool
}

// SMTPServer is an SMTP server on 127.0.0.1 with STARTTLS and AUTH PLAIN.
type SMTPServer struct {
	Host   string
	Port   int
	CACert string

	user, password string
	mu             sync.Mutex
	mails          []Mail
	authFailures   int
}

// NewSMTPServer starts a server that accepts user and password; it stops
// when the test ends.
func NewSMTPServer(tb testing.TB, user, password string) *SMTPServer {
	tb.Helper()
	cert, pemCert := Certificate(tb)
	s := &SMTPServer{user: user, password: password, CACert: pemCert}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, c: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = "127.0.0.1", addr.Port
	go func() { _ = srv.Serve(l) }() // ends with ErrServerClosed at cleanup
	tb.Cleanup(func() { srv.Close() })
	return s
}

// Mails returns the messages accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// AuthFailures counts refused logins.
func (s *SMTPServer) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFailures
}

type session struct {
	s    *SMTPServer
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if user != x.s.user || password != x.s.password {
			x.s.mu.Lock()
			x.s.authFailures++
			x.s.mu.Unlock()
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication credentials invalid"}
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && x.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.mails = append(x.s.mails, Mail{From: x.from, To: x.to, Data: b, User: x.user, TLS: isTLS})
	x.s.mu.Unlock()
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// Request is one request a Receiver answered with 2xx.
type Request struct {
	Delivery string
	Event    string
	Body     []byte
	// Signed says whether X-Buildgate-Signature matched the body.
	Signed bool
}

// Receiver is a webhook receiver on a fixed 127.0.0.1 port. It checks each
// request's signature with its secret and answers 401 to a bad one.
type Receiver struct {
	URL string
	// Delay holds each answer this long, so sends stay in flight (set it
	// before the receiver starts).
	Delay  time.Duration
	secret []byte
	addr   string

	mu       sync.Mutex
	requests []Request
	srv      *http.Server
}

// NewReceiver starts a receiver that verifies signatures with secret; it
// stops when the test ends.
func NewReceiver(tb testing.TB, secret string) *Receiver {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Receiver{secret: []byte(secret), addr: l.Addr().String()}
	r.URL = "http://" + r.addr + "/hook"
	r.serve(l)
	tb.Cleanup(r.Stop)
	return r
}

// NewStoppedReceiver returns a receiver on a free port that does not
// listen yet: sends to it fail until Start.
func NewStoppedReceiver(tb testing.TB, secret string) *Receiver {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &Receiver{secret: []byte(secret), addr: addr, URL: "http://" + addr + "/hook"}
	tb.Cleanup(r.Stop)
	return r
}

// Start listens again on the receiver's address.
func (r *Receiver) Start(tb testing.TB) {
	tb.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	r.serve(l)
}

func (r *Receiver) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(l) }() // ends with ErrServerClosed at cleanup
}

// Stop closes the receiver: sends to it are refused.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	signed := notify.Verify(r.secret, body, req.Header.Get(notify.SignatureHeader))
	if !signed {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, Request{
		Delivery: req.Header.Get(notify.DeliveryHeader), Event: req.Header.Get(notify.EventHeader), Body: bytes.Clone(body), Signed: signed,
	})
	r.mu.Unlock()
	select {
	case <-req.Context().Done():
	case <-time.After(r.Delay):
	}
	_, _ = w.Write([]byte("ok"))
}

// Requests returns the requests accepted so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}
