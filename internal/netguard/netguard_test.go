package netguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/netguard"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		addr  string
		allow string
		kind  string // "" means allowed
	}{
		{name: "public v4", addr: "93.184.216.34"},
		{name: "public v6", addr: "2606:4700::6810:85e5"},
		{name: "loopback", addr: "127.0.0.1", kind: "loopback"},
		{name: "loopback high", addr: "127.255.0.9", kind: "loopback"},
		{name: "loopback v6", addr: "::1", kind: "loopback"},
		{name: "cloud metadata", addr: "169.254.169.254", kind: "link-local"},
		{name: "private 10", addr: "10.1.2.3", kind: "private"},
		{name: "private 172", addr: "172.20.0.1", kind: "private"},
		{name: "private 192", addr: "192.168.1.1", kind: "private"},
		{name: "unique-local", addr: "fd00::1", kind: "unique-local"},
		{name: "link-local v6", addr: "fe80::1%eth0", kind: "link-local"},
		{name: "v4-mapped loopback", addr: "::ffff:127.0.0.1", kind: "loopback"},
		{name: "unspecified", addr: "0.0.0.0", kind: "unspecified"},
		{name: "cgnat", addr: "100.64.0.1", kind: "carrier-grade NAT"},
		{name: "multicast", addr: "224.0.0.1", kind: "multicast"},
		{name: "allowed loopback", addr: "127.0.0.1", allow: "127.0.0.0/8"},
		{name: "allowed single address", addr: "10.0.0.7", allow: "10.0.0.7"},
		{name: "allowance is narrow", addr: "10.0.0.8", allow: "10.0.0.7,127.0.0.0/8", kind: "private"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, err := netguard.ParseAllow(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			err = netguard.New(allow).Check(netip.MustParseAddr(tt.addr))
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			var re *netguard.RefusedError
			if !errors.As(err, &re) || re.Kind != tt.kind {
				t.Fatalf("Check(%s) = %v, want a %s refusal", tt.addr, err, tt.kind)
			}
			if !strings.Contains(err.Error(), "--allow-private-networks") {
				t.Errorf("refusal %q does not say how to allow it", err)
			}
		})
	}
}

func TestParseAllowRefusesGarbage(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "localhost", "10.0.0.0/8,nope"} {
		if _, err := netguard.ParseAllow(s); err == nil || !strings.Contains(err.Error(), "invalid private network") {
			t.Errorf("ParseAllow(%q) = %v, want an error naming the bad entry", s, err)
		}
	}
}

func server(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func ok() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "reached") })
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "reached" {
		return errors.New("unexpected answer " + string(b))
	}
	return nil
}

func TestClientRefusesLoopbackLiteralAndName(t *testing.T) {
	srv := server(t, "127.0.0.1:0", ok())
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	c := netguard.New(nil).Client(5*time.Second, 3)
	for _, url := range []string{srv.URL, "http://localhost:" + itoa(port) + "/"} {
		if err := get(c, url); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET %s = %v, want refused", url, err)
		}
	}
	allowed := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}).Client(5*time.Second, 3)
	for _, url := range []string{srv.URL, "http://localhost:" + itoa(port) + "/"} {
		if err := get(allowed, url); err != nil {
			t.Errorf("GET %s with 127.0.0.0/8 allowed: %v", url, err)
		}
	}
}

func TestClientRefusesRedirectToLoopback(t *testing.T) {
	// The target listens on 127.0.0.1; the redirecting server on
	// 127.0.0.2, the one address allowed.
	target := server(t, "127.0.0.1:0", ok())
	redirect := server(t, "127.0.0.2:0", http.RedirectHandler(target.URL+"/latest.json", http.StatusFound))
	byName := server(t, "127.0.0.2:0", http.RedirectHandler("http://localhost:"+itoa(target.Listener.Addr().(*net.TCPAddr).Port)+"/", http.StatusFound))
	c := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}).Client(5*time.Second, 3)
	for _, url := range []string{redirect.URL, byName.URL} {
		if err := get(c, url); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET %s redirecting to loopback = %v, want refused", url, err)
		}
	}
	both := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5*time.Second, 3)
	if err := get(both, redirect.URL); err != nil {
		t.Errorf("redirect with 127.0.0.0/8 allowed: %v", err)
	}
}

func TestDialContextRefusesPrivate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = netguard.New(nil).DialContext(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("dialing %s = %v, want refused", ln.Addr(), err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
