package main

import (
	"context"
	"os"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/registry"
	"github.com/buildgate/buildgate/internal/secret"
)

// openRegistries wires the registry-credential service, with secrets
// sealed by sealer, to the store and the pull path.
func (m *Main) openRegistries(ctx context.Context, sealer *secret.Sealer) error {
	m.RegistryAuth = registry.NewAuth(func(ctx context.Context) ([]registry.Credential, error) {
		return pullCredentials(ctx, m.Registries)
	}, registry.AuthConfig{
		Base:  m.Guard.Transport(),
		Guard: m.Guard,
		ECR: registry.ECRConfig{
			Endpoint: m.Config.ECREndpoint, Region: awsRegion(),
			HTTPClient: m.Guard.Client(time.Minute, 0),
		},
	})
	m.Registries = analysis.NewRegistries(m.Store, sealer, loginAdapter{m.RegistryAuth}, m.Log)
	m.Registries.Changed = m.RegistryAuth.Invalidate
	m.Registries.CheckHost = func(c buildgate.RegistryCredential) error {
		if c.Type != buildgate.RegistryTypeAWSECR {
			return nil
		}
		return registry.CheckECRHost(c.Registry, m.Guard)
	}
	// Opening every record now logs the ones this key cannot open.
	_, err := m.Registries.Credentials(ctx)
	return err
}

// awsRegion is the region for awsecr registries whose host names none.
func awsRegion() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

func toPullCredential(c analysis.Credential) registry.Credential {
	return registry.Credential{
		Registry: c.Registry, Type: c.Type, Username: c.Username, Password: c.Password,
		VerifyTLS: c.VerifyTLS, CACert: c.CACert,
	}
}

// pullCredentials serves registry.CredentialSource from the service.
func pullCredentials(ctx context.Context, r *analysis.Registries) ([]registry.Credential, error) {
	creds, err := r.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]registry.Credential, 0, len(creds))
	for _, c := range creds {
		out = append(out, toPullCredential(c))
	}
	return out, nil
}

// loginAdapter serves analysis.RegistryChecker with registry.Auth.
type loginAdapter struct{ auth *registry.Auth }

func (l loginAdapter) Login(ctx context.Context, c analysis.Credential) error {
	return l.auth.Login(ctx, toPullCredential(c))
}
