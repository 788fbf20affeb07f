package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/netguard"
	"github.com/buildgate/buildgate/internal/secret"
)

// ECRAutoUser is the username of an awsecr record that uses the default
// AWS credential chain (environment, shared config, instance or task role)
// instead of stored access keys.
const ECRAutoUser = buildgate.RegistryUserECRAuto

// ECRConfig says how ECR tokens are minted.
type ECRConfig struct {
	// Endpoint overrides the ECR API endpoint (a VPC endpoint, or a fake in
	// tests); empty means AWS's endpoint for the region.
	Endpoint string
	// Region is used for registries whose host does not name one
	// (<account>.dkr.ecr.<region>.amazonaws.com does).
	Region string
	// HTTPClient makes the ECR API calls; nil means the SDK's default.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ECRTokens mints ECR authorization tokens with GetAuthorizationToken and
// caches each until shortly before it expires.
type ECRTokens struct {
	cfg ECRConfig

	mu    sync.Mutex
	cache map[string]ecrToken
	mints int
}

type ecrToken struct {
	user, pass string
	expires    time.Time
	renew      time.Time
}

// NewECRTokens returns an empty token cache.
func NewECRTokens(cfg ECRConfig) *ECRTokens {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ECRTokens{cfg: cfg, cache: map[string]ecrToken{}}
}

// Mints returns how many tokens were minted so far.
func (e *ECRTokens) Mints() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mints
}

var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr(?:\.ecr|-ecr)(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$`)

// ECRRegion returns the region named by an ECR registry host,
// <account>.dkr.ecr.<region>.amazonaws.com, or "" for another host.
func ECRRegion(host string) string {
	h, _, _ := strings.Cut(host, ":")
	m := ecrHost.FindStringSubmatch(strings.ToLower(h))
	if m == nil {
		return ""
	}
	return m[2]
}

// CheckECRHost refuses an awsecr registry host that is neither an ECR
// registry (<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn], or the
// dual-stack <account>.dkr-ecr[-fips].<region>.on.aws) nor an IP address in
// a private network the guard allows: the gate's own ECR token goes to
// that host.
func CheckECRHost(host string, guard *netguard.Guard) error {
	if ECRRegion(host) != "" || guard.AllowedPrivate(host) {
		return nil
	}
	return buildgate.Errorf(buildgate.EINVALID, "awsecr registry %q is not an Amazon ECR host: write <account>.dkr.ecr.<region>.amazonaws.com (or .amazonaws.com.cn, dkr.ecr-fips, dkr-ecr.<region>.on.aws), or, for a private endpoint, an IP address in a network allowed with %s", host, netguard.AllowFlag)
}

// renewMargin is how long before expiry a token is renewed: ten minutes,
// or half the token's life when that is shorter.
func renewMargin(life time.Duration) time.Duration {
	return min(10*time.Minute, life/2)
}

// Token returns the username and password to send to c's ECR registry: a
// cached token, or a new one from GetAuthorizationToken in the registry's
// region with c's access keys (or the default chain for awsauto).
func (e *ECRTokens) Token(ctx context.Context, c Credential) (string, secret.Secret, error) {
	host := c.Host()
	region := ECRRegion(host)
	if region == "" {
		region = e.cfg.Region
	}
	if region == "" {
		return "", "", fmt.Errorf("cannot tell the AWS region of ECR registry %s: its host is not <account>.dkr.ecr.<region>.amazonaws.com", host)
	}
	// A token serves one registry host: the key names it, so a token
	// minted for one host is never handed to another.
	sum := sha256.Sum256([]byte(c.Password))
	key := host + "\x00" + region + "\x00" + c.Username + "\x00" + hex.EncodeToString(sum[:])

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	if t, ok := e.cache[key]; ok && now.Before(t.renew) {
		return t.user, secret.Secret(t.pass), nil
	}
	t, err := e.mint(ctx, region, c)
	if err != nil {
		return "", "", fmt.Errorf("minting an ECR token for %s in %s: %s", host, region, secret.Redact(err.Error(), string(c.Password)))
	}
	e.mints++
	t.renew = t.expires.Add(-renewMargin(t.expires.Sub(now)))
	e.cache[key] = t
	return t.user, secret.Secret(t.pass), nil
}

func (e *ECRTokens) mint(ctx context.Context, region string, c Credential) (ecrToken, error) {
	var cfg aws.Config
	if c.Username == ECRAutoUser {
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region)); err != nil {
			return ecrToken{}, fmt.Errorf("loading the default AWS credential chain: %w", err)
		}
	} else {
		if c.Username == "" || c.Password == "" {
			return ecrToken{}, errors.New("an awsecr record needs an access key id as username and the secret access key as password, or username awsauto")
		}
		cfg = aws.Config{Region: region, Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(c.Username, string(c.Password), ""))}
	}
	client := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if e.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(e.cfg.Endpoint)
		}
		if e.cfg.HTTPClient != nil {
			o.HTTPClient = e.cfg.HTTPClient
		}
	})
	out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return ecrToken{}, err
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return ecrToken{}, errors.New("GetAuthorizationToken returned no token")
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return ecrToken{}, errors.New("GetAuthorizationToken returned a token that is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return ecrToken{}, errors.New("GetAuthorizationToken returned a token that is not user:password")
	}
	t := ecrToken{user: user, pass: pass, expires: e.cfg.Now().Add(12 * time.Hour)}
	if d.ExpiresAt != nil {
		t.expires = *d.ExpiresAt
	}
	return t, nil
}
