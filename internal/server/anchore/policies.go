package anchore

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// policyRecord is Anchore's policy bundle record.
type policyRecord struct {
	PolicyID     string          `json:"policyId"`
	Active       bool            `json:"active"`
	Name         string          `json:"name"`
	PolicySource string          `json:"policy_source"`
	CreatedAt    string          `json:"created_at"`
	LastUpdated  string          `json:"last_updated"`
	UserID       string          `json:"userId"`
	PolicyBundle json.RawMessage `json:"policybundle,omitempty"`
}

func toPolicyRecord(rec *buildgate.PolicyRecord, withBundle bool) policyRecord {
	p := policyRecord{
		PolicyID: rec.ID, Active: rec.Active, Name: rec.Name, PolicySource: "local",
		CreatedAt: isoTime(rec.CreatedAt), LastUpdated: isoTime(rec.UpdatedAt), UserID: userID,
	}
	if withBundle {
		p.PolicyBundle = rec.Bundle
	}
	return p
}

// readBody reads a request body of at most maxPeek bytes.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxPeek+1))
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "reading the body: %v", err)
	}
	if len(b) > maxPeek {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the body is larger than %d bytes", maxPeek)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the request has no body")
	}
	return b, nil
}

// addPolicy stores a bundle (POST /policies?detail=) and answers one
// record; a bundle whose id exists becomes that policy's next version.
func (a *API) addPolicy(c echo.Context) error {
	detail, err := boolParam(c, "detail", true)
	if err != nil {
		return err
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	rec, err := a.cfg.Verdicts.Save(c.Request().Context(), "", b, false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPolicyRecord(rec, detail))
}

func (a *API) listPolicies(c echo.Context) error {
	detail, err := boolParam(c, "detail", false)
	if err != nil {
		return err
	}
	recs, err := a.cfg.Store.ListPolicies(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]policyRecord, 0, len(recs))
	for i := range recs {
		out = append(out, toPolicyRecord(&recs[i], detail))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getPolicy(c echo.Context) error {
	detail, err := boolParam(c, "detail", true)
	if err != nil {
		return err
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	rec, err := a.cfg.Store.Policy(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []policyRecord{toPolicyRecord(rec, detail)})
}

// updatePolicy answers PUT /policies/{id}, whose body is the full record
// anchore-cli fetched with active set to true (policy activate), possibly
// with a changed policybundle; a bare bundle is read as the policybundle.
// A changed bundle is stored as a new version; active: true activates the
// policy (the others become inactive). active: false does not deactivate:
// the gate keeps one active bundle until another is activated.
func (a *API) updatePolicy(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rec, err := a.cfg.Store.Policy(ctx, id)
	if err != nil {
		return err
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	var body struct {
		Active       *bool           `json:"active"`
		PolicyBundle json.RawMessage `json:"policybundle"`
		Policies     json.RawMessage `json:"policies"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return buildgate.Errorf(buildgate.EINVALID, "invalid JSON body: %v", err)
	}
	bundle := body.PolicyBundle
	if len(bundle) == 0 && len(body.Policies) > 0 {
		bundle = b
	}
	activate := body.Active != nil && *body.Active
	if len(bundle) > 0 && string(bundle) != "null" {
		changed, err := bundleChanged(rec.Bundle, bundle)
		if err != nil {
			return err
		}
		if changed {
			if rec, err = a.cfg.Verdicts.Save(ctx, id, bundle, activate); err != nil {
				return err
			}
		}
	}
	if activate && !rec.Active {
		if err := a.cfg.Verdicts.Activate(ctx, id); err != nil {
			return err
		}
	}
	if rec, err = a.cfg.Store.Policy(ctx, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []policyRecord{toPolicyRecord(rec, true)})
}

// bundleChanged reports whether a bundle differs from the stored one once
// both are in canonical form (the form the gate stores).
func bundleChanged(stored, bundle []byte) (bool, error) {
	b, err := policy.ParseBundle(bundle)
	if err != nil {
		return false, err
	}
	canonical, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return !bytes.Equal(bytes.TrimSpace(stored), canonical), nil
}

// deletePolicy deletes a policy; deleting the active one is refused (400).
func (a *API) deletePolicy(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeletePolicy(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
