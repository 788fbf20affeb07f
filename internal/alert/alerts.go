package alert

import (
	"context"
	"slices"
	"strings"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

const (
	maxDescriptionSize = 4 << 10
	maxGlobSize        = 512
	// maxDeliveries bounds a deliveries listing.
	maxDeliveries = 1000
)

// CreateAlert validates an alert and stores it.
func (s *Service) CreateAlert(ctx context.Context, a buildgate.Alert) (*buildgate.Alert, error) {
	if err := normalizeAlert(&a); err != nil {
		return nil, err
	}
	a.ID = ""
	out, err := s.store.CreateAlert(ctx, a)
	if err != nil {
		return nil, err
	}
	s.log.Info("alert created", "alert", out.ID, "name", out.Name, "enabled", out.Enabled)
	return out, nil
}

// UpdateAlert replaces an alert with a (a PUT: every field as given).
func (s *Service) UpdateAlert(ctx context.Context, id string, a buildgate.Alert) (*buildgate.Alert, error) {
	if err := normalizeAlert(&a); err != nil {
		return nil, err
	}
	a.ID = id
	out, err := s.store.UpdateAlert(ctx, a)
	if err != nil {
		return nil, err
	}
	s.log.Info("alert updated", "alert", out.ID, "name", out.Name, "enabled", out.Enabled)
	return out, nil
}

// Alert returns one alert.
func (s *Service) Alert(ctx context.Context, id string) (*buildgate.Alert, error) {
	return s.store.Alert(ctx, id)
}

// Alerts lists the alerts.
func (s *Service) Alerts(ctx context.Context) ([]buildgate.Alert, error) {
	return s.store.ListAlerts(ctx)
}

// DeleteAlert deletes an alert and its deliveries.
func (s *Service) DeleteAlert(ctx context.Context, id string) error {
	if err := s.store.DeleteAlert(ctx, id); err != nil {
		return err
	}
	s.log.Info("alert deleted", "alert", id)
	return nil
}

// AlertDeliveries returns an alert's deliveries, newest first, each with
// its attempts; limit 0 means 100.
func (s *Service) AlertDeliveries(ctx context.Context, id string, limit int) ([]buildgate.Delivery, error) {
	if _, err := s.store.Alert(ctx, id); err != nil {
		return nil, err
	}
	return s.store.Deliveries(ctx, buildgate.SourceAlert, id, deliveryLimit(limit))
}

func deliveryLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > maxDeliveries:
		return maxDeliveries
	}
	return n
}

// normalizeAlert validates an alert and fills its defaults: empty globs
// become "*", unscanned_image's action notify.
func normalizeAlert(a *buildgate.Alert) error {
	a.Name = strings.TrimSpace(a.Name)
	switch {
	case a.Name == "":
		return buildgate.Errorf(buildgate.EINVALID, "an alert needs a name")
	case len(a.Name) > maxNameSize:
		return buildgate.Errorf(buildgate.EINVALID, "the name is longer than %d bytes", maxNameSize)
	case len(a.Description) > maxDescriptionSize:
		return buildgate.Errorf(buildgate.EINVALID, "the description is longer than %d bytes", maxDescriptionSize)
	case len(a.Triggers) == 0:
		return buildgate.Errorf(buildgate.EINVALID, "an alert needs at least one trigger (%s)", strings.Join(buildgate.TriggerTypes(), ", "))
	}
	for _, g := range []*string{&a.Scope.Registry, &a.Scope.Repository, &a.Scope.Tag, &a.Scope.Cluster, &a.Scope.Namespace} {
		*g = strings.TrimSpace(*g)
		if *g == "" {
			*g = "*"
		}
		if len(*g) > maxGlobSize {
			return buildgate.Errorf(buildgate.EINVALID, "a scope glob is longer than %d bytes", maxGlobSize)
		}
	}
	seen := map[string]bool{}
	for i := range a.Triggers {
		t := &a.Triggers[i]
		t.Type = strings.ToLower(strings.TrimSpace(t.Type))
		if !slices.Contains(buildgate.TriggerTypes(), t.Type) {
			return buildgate.Errorf(buildgate.EINVALID, "unknown trigger %q (want one of %s)", t.Type, strings.Join(buildgate.TriggerTypes(), ", "))
		}
		if seen[t.Type] {
			return buildgate.Errorf(buildgate.EINVALID, "trigger %s is given twice", t.Type)
		}
		seen[t.Type] = true
		t.Action = strings.ToLower(strings.TrimSpace(t.Action))
		if t.Action != "" && t.Type != buildgate.TriggerUnscannedImage {
			return buildgate.Errorf(buildgate.EINVALID, "only %s takes an action", buildgate.TriggerUnscannedImage)
		}
		if t.Type == buildgate.TriggerUnscannedImage {
			switch t.Action {
			case "":
				t.Action = buildgate.ActionNotify
			case buildgate.ActionNotify, buildgate.ActionScan:
			default:
				return buildgate.Errorf(buildgate.EINVALID, "unknown action %q of %s (want notify or scan)", t.Action, t.Type)
			}
		}
		if t.MinSeverity != "" {
			if t.Type != buildgate.TriggerNewVulnerabilities {
				return buildgate.Errorf(buildgate.EINVALID, "only %s takes min_severity", buildgate.TriggerNewVulnerabilities)
			}
			sev, err := buildgate.ParseSeverity(t.MinSeverity)
			if err != nil {
				return buildgate.Errorf(buildgate.EINVALID, "min_severity: %v", err)
			}
			t.MinSeverity = strings.ToLower(sev.String())
		}
	}
	if a.Channels == nil {
		a.Channels = []string{}
	}
	seenCh := map[string]bool{}
	chans := []string{}
	for _, c := range a.Channels {
		c = strings.TrimSpace(c)
		if c != "" && !seenCh[c] {
			seenCh[c] = true
			chans = append(chans, c)
		}
	}
	a.Channels = chans
	return nil
}

// trigger returns the alert's trigger of type typ.
func trigger(a buildgate.Alert, typ string) (buildgate.AlertTrigger, bool) {
	for _, t := range a.Triggers {
		if t.Type == typ {
			return t, true
		}
	}
	return buildgate.AlertTrigger{}, false
}

// glob matches s against a scope glob (policy.MatchGlob: "*" matches any
// run of characters, "/" included); an empty scope field matches all.
func glob(pattern, s string) bool {
	return pattern == "" || policy.MatchGlob(pattern, s)
}

// wildcard reports whether a glob matches everything.
func wildcard(g string) bool { return g == "" || g == "*" }

// tagInScope reports whether a full tag (or a digest reference) is in the
// registry, repository and tag globs of a scope.
func tagInScope(sc buildgate.AlertScope, ref string) bool {
	reg, repo, tag := policy.ParseTag(ref)
	return glob(sc.Registry, reg) && glob(sc.Repository, repo) && glob(sc.Tag, tag)
}

// imageInScope reports whether an image with tags is in the image part of
// a scope; an image without tags is only in a scope that takes every tag.
func imageInScope(sc buildgate.AlertScope, tags []string) bool {
	if len(tags) == 0 {
		return wildcard(sc.Registry) && wildcard(sc.Repository) && wildcard(sc.Tag)
	}
	for _, t := range tags {
		if tagInScope(sc, t) {
			return true
		}
	}
	return false
}

// containerInScope reports whether a running container is in a scope.
func containerInScope(sc buildgate.AlertScope, c buildgate.RuntimeContainer) bool {
	ref := c.Tag
	if ref == "" {
		ref = c.Image
	}
	return glob(sc.Cluster, c.Cluster) && glob(sc.Namespace, c.Namespace) && tagInScope(sc, ref)
}
