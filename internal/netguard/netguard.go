// Package netguard keeps requests made on behalf of users (registry pulls,
// webhooks, Slack, SMTP, the ECR API, the vulnerability DB update) away
// from the gate's own networks: its dialer refuses loopback, link-local
// (cloud metadata), private, unique-local, CGNAT, unspecified and multicast
// destinations after DNS resolution, on the address it actually dials, so
// a name that resolves there and a redirect that points there are refused
// alike. An operator allows chosen prefixes (an air-gapped registry on
// 10.0.0.0/8, a test registry on 127.0.0.0/8).
package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// AllowFlag is how an operator allows private destinations; refusals name it.
const AllowFlag = "gate serve --allow-private-networks (GATE_ALLOW_PRIVATE_NETWORKS)"

// blocked lists the destinations refused unless allowed, with why.
var blocked = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
}

// Guard decides which destinations outbound connections may reach. The
// zero Guard refuses every blocked range; a nil *Guard allows everything.
type Guard struct {
	allow []netip.Prefix
}

// New returns a guard that lets through the allow prefixes.
func New(allow []netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...)}
}

// ParseAllow parses a comma-separated list of CIDR prefixes (or single
// addresses) such as "127.0.0.0/8,10.0.0.0/8"; empty means none.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("invalid private network %q: want a CIDR prefix such as 10.0.0.0/8 or an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("invalid private network %q: want a CIDR prefix such as 10.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// RefusedError is a connection the guard refused.
type RefusedError struct {
	Addr netip.Addr
	// Kind says which blocked range Addr is in ("loopback", "private"...).
	Kind string
}

// Error names the address, its range and how to allow it.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("destination %s is a %s address, which the gate does not connect to unless allowed with %s", e.Addr, e.Kind, AllowFlag)
}

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = errors.New("destination refused by the private network guard")

// Is reports whether target is ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Check returns a *RefusedError when addr is in a blocked range and in no
// allowed prefix.
func (g *Guard) Check(addr netip.Addr) error {
	if g == nil {
		return nil
	}
	addr = addr.Unmap().WithZone("")
	kind := ""
	for _, b := range blocked {
		if b.prefix.Contains(addr) {
			kind = b.kind
			break
		}
	}
	if kind == "" {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	return &RefusedError{Addr: addr, Kind: kind}
}

// CheckHost checks a host that is an IP literal; names pass (the dialer
// checks the addresses they resolve to).
func (g *Guard) CheckHost(host string) error {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if i := strings.LastIndex(h, "%"); i >= 0 {
		h = h[:i]
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return nil
	}
	return g.Check(a)
}

// AllowedPrivate reports whether host (optionally with a port) is an IP
// literal in a blocked range that the operator allowed: a private endpoint
// the gate may treat like a public service's.
func (g *Guard) AllowedPrivate(host string) bool {
	if g == nil {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return false
	}
	var re *RefusedError
	return errors.As(New(nil).Check(a), &re) && g.Check(a) == nil
}

// Control is a net.Dialer Control function: it checks the address about
// to be dialled, after DNS resolution.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dialing %s: unparsable address: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a dialer whose every connection is checked.
func (g *Guard) Dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if g != nil {
		d.Control = g.Control
	}
	return d
}

// Transport returns an HTTP transport that dials through the guard. It
// uses no proxy: a proxy would make the connection the guard checks.
func (g *Guard) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           g.Dialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// Client returns an HTTP client over Transport that follows at most
// maxRedirects redirects (none when 0), each checked by the dialer; a
// redirect to an IP literal in a blocked range is refused before dialing.
func (g *Guard) Client(timeout time.Duration, maxRedirects int) *http.Client {
	return &http.Client{
		Transport: g.Transport(),
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects == 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return g.CheckHost(req.URL.Hostname())
		},
	}
}

// DialContext dials through the guard; it serves senders that speak
// protocols other than HTTP (SMTP).
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer().DialContext(ctx, network, address)
}
