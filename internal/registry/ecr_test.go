package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/netguard"
	"github.com/buildgate/buildgate/internal/registry/registrytest"
	"github.com/buildgate/buildgate/internal/testclock"
)

// fakeECR is an in-process ECR API: GetAuthorizationToken returns a new
// token each call, valid for ttl on the shared clock. It records the access
// key id and region of each SigV4-signed call.
type fakeECR struct {
	*httptest.Server
	clock *testclock.Clock
	ttl   time.Duration

	mu      sync.Mutex
	calls   []ecrCall
	current string
}

type ecrCall struct{ accessKey, region string }

var sigV4 = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/ecr/aws4_request`)

func newFakeECR(t *testing.T, clock *testclock.Clock, ttl time.Duration) *fakeECR {
	f := &fakeECR{clock: clock, ttl: ttl}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"%s"}`, r.Header.Get("X-Amz-Target"))
			return
		}
		m := sigV4.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`)
			return
		}
		if m[1] == "AKIDBAD" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, ecrCall{accessKey: m[1], region: m[2]})
		f.current = fmt.Sprintf("ecr-token-%d", len(f.calls))
		tok := f.current
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + tok)),
			"expiresAt":          float64(f.clock.Now().Add(f.ttl).Unix()),
			"proxyEndpoint":      "https://123456789012.dkr.ecr.us-west-2.amazonaws.com",
		}}})
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeECR) Calls() []ecrCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ecrCall(nil), f.calls...)
}

func (f *fakeECR) Current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// noAWSEnvironment keeps the SDK from reading the machine's AWS setup.
func noAWSEnvironment(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
	} {
		t.Setenv(k, v)
	}
}

func TestECRRegion(t *testing.T) {
	tests := []struct{ host, want string }{
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1"},
		{"123456789012.dkr.ecr.eu-central-1.amazonaws.com:443", "eu-central-1"},
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1"},
		{"123456789012.dkr-ecr.ap-south-1.on.aws", "ap-south-1"},
		{"public.ecr.aws", ""},
		{"12345.dkr.ecr.us-east-1.amazonaws.com", ""},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", ""},
		{"127.0.0.1:5000", ""},
	}
	for _, tt := range tests {
		if got := ECRRegion(tt.host); got != tt.want {
			t.Errorf("ECRRegion(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// TestECRTokenMintedCachedRenewed: the token is minted with the record's
// access key in the region its host names, served from the cache while it
// is fresh, and renewed shortly before it expires.
func TestECRTokenMintedCachedRenewed(t *testing.T) {
	noAWSEnvironment(t)
	clock := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	fake := newFakeECR(t, clock, time.Hour)
	const host = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	auth := NewAuth(static(Credential{Registry: host, Type: buildgate.RegistryTypeAWSECR, Username: "AKIDEXAMPLE", Password: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
		AuthConfig{ECR: ECRConfig{Endpoint: fake.URL, Now: clock.Now}})
	ref, _ := name.ParseReference(host + "/team/app:v1")
	password := func() string {
		t.Helper()
		a, err := auth.Keychain().Resolve(ref.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != "AWS" {
			t.Fatalf("username %q, want AWS", cfg.Username)
		}
		return cfg.Password
	}

	if got := password(); got != "ecr-token-1" {
		t.Fatalf("first token %q", got)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0] != (ecrCall{"AKIDEXAMPLE", "us-west-2"}) {
		t.Fatalf("ECR calls %+v, want one with AKIDEXAMPLE in us-west-2", calls)
	}
	clock.Advance(45 * time.Minute)
	if got := password(); got != "ecr-token-1" || auth.ECR().Mints() != 1 {
		t.Fatalf("after 45 minutes: token %q, %d mints; want the cached token", got, auth.ECR().Mints())
	}
	clock.Advance(6 * time.Minute) // 9 minutes before expiry: renew
	if got := password(); got != "ecr-token-2" || auth.ECR().Mints() != 2 {
		t.Fatalf("9 minutes before expiry: token %q, %d mints; want a renewed token", got, auth.ECR().Mints())
	}
	if got := password(); got != "ecr-token-2" || auth.ECR().Mints() != 2 {
		t.Fatalf("token %q, %d mints; want the renewed token cached", got, auth.ECR().Mints())
	}
}

// TestECRPull pulls from a registry that accepts only the latest ECR token,
// across a renewal; the region comes from the configuration because the
// test registry's host names none.
func TestECRPull(t *testing.T) {
	noAWSEnvironment(t)
	clock := testclock.New(time.Now())
	fake := newFakeECR(t, clock, 2*time.Minute)
	srv := registrytest.NewAuthServer(t, func(u, p string) bool {
		return (u == "pusher" && p == "push") || (u == "AWS" && p != "" && p == fake.Current())
	})
	ref := registrytest.Push(t, srv.Host, "team/app:v1", "pusher", "push", randomImage(t), nil)
	const secretKey = "ecr-secret-access-key-do-not-leak"
	cred := Credential{Registry: srv.Host, Type: buildgate.RegistryTypeAWSECR, Username: "AKIDPULL", Password: secretKey, VerifyTLS: true}
	auth := NewAuth(static(cred), AuthConfig{Guard: loopback, ECR: ECRConfig{Endpoint: fake.URL, Region: "eu-central-1", Now: clock.Now}})

	if err := auth.Login(context.Background(), cred); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := pull(t, auth, ref); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if n := auth.ECR().Mints(); n != 1 {
		t.Fatalf("%d mints after a login and a pull within the token's life, want 1", n)
	}
	clock.Advance(time.Minute + time.Second) // past half of the 2-minute life
	if err := pull(t, auth, ref); err != nil {
		t.Fatalf("pull after renewal: %v", err)
	}
	if n := auth.ECR().Mints(); n != 2 {
		t.Fatalf("%d mints, want 2 (renewed)", n)
	}
	for _, c := range fake.Calls() {
		if c != (ecrCall{"AKIDPULL", "eu-central-1"}) {
			t.Fatalf("ECR call %+v", c)
		}
	}

	bad := cred
	bad.Username = "AKIDBAD"
	err := NewAuth(static(), AuthConfig{Guard: loopback, ECR: ECRConfig{Endpoint: fake.URL, Region: "eu-central-1"}}).Login(context.Background(), bad)
	if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), srv.Host) ||
		!strings.Contains(err.Error(), "UnrecognizedClientException") || strings.Contains(err.Error(), secretKey) {
		t.Fatalf("Login with a bad access key: %v", err)
	}
	noRegion := NewAuth(static(), AuthConfig{Guard: loopback, ECR: ECRConfig{Endpoint: fake.URL}}).Login(context.Background(), cred)
	if noRegion == nil || !strings.Contains(noRegion.Error(), "region") {
		t.Fatalf("Login without a region: %v", noRegion)
	}
}

// TestECRAutoUsesDefaultChain: username awsauto takes the keys from the
// default AWS credential chain (here, the environment).
func TestECRAutoUsesDefaultChain(t *testing.T) {
	noAWSEnvironment(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
	clock := testclock.New(time.Now())
	fake := newFakeECR(t, clock, time.Hour)
	tokens := NewECRTokens(ECRConfig{Endpoint: fake.URL, Now: clock.Now})
	user, pass, err := tokens.Token(context.Background(), Credential{Registry: "210987654321.dkr.ecr.ap-southeast-2.amazonaws.com", Type: buildgate.RegistryTypeAWSECR, Username: ECRAutoUser})
	if err != nil {
		t.Fatal(err)
	}
	if user != "AWS" || string(pass) != "ecr-token-1" {
		t.Fatalf("token %s:%s", user, string(pass))
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0] != (ecrCall{"AKIDFROMENV", "ap-southeast-2"}) {
		t.Fatalf("ECR calls %+v", calls)
	}
}

// loopback allows the test registries on 127.0.0.1 as private endpoints.
var loopback = netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})

// TestECRHostMustBeECR: an awsecr record for a host that is not an ECR
// registry (nor an allowed private endpoint) never gets the gate's token,
// and no token is minted for it.
func TestECRHostMustBeECR(t *testing.T) {
	noAWSEnvironment(t)
	clock := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	fake := newFakeECR(t, clock, time.Hour)
	tests := []struct {
		name  string
		host  string
		guard *netguard.Guard
		ok    bool
	}{
		{name: "ecr", host: "123456789012.dkr.ecr.us-west-2.amazonaws.com", ok: true},
		{name: "ecr china", host: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ok: true},
		{name: "ecr fips", host: "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", ok: true},
		{name: "ecr dual-stack", host: "123456789012.dkr-ecr.us-east-1.on.aws", ok: true},
		{name: "lookalike", host: "123456789012.dkr.ecr.us-west-2.amazonaws.com.evil.example"},
		{name: "any host", host: "registry.evil.example"},
		{name: "private endpoint not allowed", host: "127.0.0.1:5000"},
		{name: "allowed private endpoint", host: "127.0.0.1:5000", guard: loopback, ok: true},
		{name: "allowance is for addresses", host: "localhost:5000", guard: loopback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckECRHost(tt.host, tt.guard)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckECRHost(%q) = %v, want ok %v", tt.host, err, tt.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "dkr.ecr.<region>.amazonaws.com") || !strings.Contains(err.Error(), "--allow-private-networks")) {
				t.Errorf("refusal %q does not say what a host must be", err)
			}
		})
	}
	before := fake.Calls()
	auth := NewAuth(static(Credential{Registry: "registry.evil.example", Type: buildgate.RegistryTypeAWSECR, Username: "AKIDEXAMPLE", Password: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
		AuthConfig{ECR: ECRConfig{Endpoint: fake.URL, Region: "us-west-2", Now: clock.Now}})
	ref, _ := name.ParseReference("registry.evil.example/team/app:v1")
	if _, err := auth.Keychain().Resolve(ref.Context()); err == nil || !strings.Contains(err.Error(), "not an Amazon ECR host") {
		t.Fatalf("keychain for a non-ECR awsecr host = %v, want a refusal", err)
	}
	if len(fake.Calls()) != len(before) {
		t.Fatalf("a token was minted for a non-ECR host")
	}
}

// TestECRTokenCacheKeyedByHost: two ECR registries with the same keys in
// the same region each get their own token.
func TestECRTokenCacheKeyedByHost(t *testing.T) {
	noAWSEnvironment(t)
	clock := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	fake := newFakeECR(t, clock, time.Hour)
	tokens := NewECRTokens(ECRConfig{Endpoint: fake.URL, Now: clock.Now})
	var got []string
	for _, host := range []string{"111111111111.dkr.ecr.us-west-2.amazonaws.com", "222222222222.dkr.ecr.us-west-2.amazonaws.com"} {
		_, pass, err := tokens.Token(context.Background(), Credential{Registry: host, Type: buildgate.RegistryTypeAWSECR, Username: "AKIDEXAMPLE", Password: "same-secret"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(pass))
	}
	if tokens.Mints() != 2 || got[0] == got[1] {
		t.Fatalf("tokens %v after %d mints: want one token per host", got, tokens.Mints())
	}
}
