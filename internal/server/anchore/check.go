package anchore

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// checkHeader is the evaluation table's header. The Anchore plugin finds
// columns by name; anchore-cli's --detail table reads columns 3 to 7.
var checkHeader = []string{"Image_Id", "Repo_Tag", "Trigger_Id", "Gate", "Trigger", "Check_Output", "Gate_Action", "Whitelisted", "Policy_Id"}

// checkEntry is one evaluation of an image for a tag in /check.
type checkEntry struct {
	PolicyID       string `json:"policyId"`
	Status         string `json:"status"`
	LastEvaluation string `json:"last_evaluation"`
	Detail         any    `json:"detail"`
}

type checkDetail struct {
	Policy json.RawMessage `json:"policy"`
	Result checkResult     `json:"result"`
}

type checkResult struct {
	ImageID                      string         `json:"image_id"`
	Tag                          string         `json:"tag"`
	FinalAction                  string         `json:"final_action"`
	FinalActionReason            string         `json:"final_action_reason"`
	MatchedMappingRule           any            `json:"matched_mapping_rule"`
	MatchedWhitelistedImagesRule any            `json:"matched_whitelisted_images_rule"`
	MatchedBlacklistedImagesRule any            `json:"matched_blacklisted_images_rule"`
	EvaluationProblems           []any          `json:"evaluation_problems"`
	CreatedAt                    string         `json:"created_at"`
	LastModified                 string         `json:"last_modified"`
	UserID                       string         `json:"user_id"`
	Result                       map[string]any `json:"result"`
}

type evalTable struct {
	Result tableResult `json:"result"`
}

type tableResult struct {
	Header      []string `json:"header"`
	RowCount    int      `json:"row_count"`
	Rows        [][]any  `json:"rows"`
	FinalAction string   `json:"final_action"`
}

// whitelisted is the Whitelisted column of an allowlisted finding.
type whitelisted struct {
	WhitelistName string `json:"whitelist_name"`
	WhitelistID   string `json:"whitelist_id"`
	MatchedRuleID string `json:"matched_rule_id"`
}

// check answers /images/{digest}/check?tag=&detail=&policyId=&history=
// with the verdict of the gate's own check, in Anchore's shape:
// [{digest: {fulltag: [{policyId, status, last_evaluation, detail}]}}].
func (a *API) check(c echo.Context) error {
	detail, err := boolParam(c, "detail", false)
	if err != nil {
		return err
	}
	if _, err := boolParam(c, "history", false); err != nil {
		return err
	}
	img, err := a.image(c)
	if err != nil {
		return err
	}
	if img.Status != buildgate.StatusAnalyzed {
		return notAnalyzed(img)
	}
	tag := c.QueryParam("tag")
	if tag == "" {
		if len(img.Tags) == 0 {
			return buildgate.Errorf(buildgate.EINVALID, "image %s has no tag: pass ?tag=registry/repository:tag", img.Digest)
		}
		tag = img.Tags[0]
	}
	ctx := c.Request().Context()
	v, err := a.cfg.Verdicts.Check(ctx, img.Digest, tag, c.QueryParam("policyId"))
	if err != nil {
		return err
	}
	fulltag := v.Tag
	if fulltag == "" {
		fulltag = policy.FullTag(tag)
	}
	entry := checkEntry{PolicyID: v.BundleID, Status: v.Status(), LastEvaluation: isoTime(v.EvaluatedAt), Detail: map[string]any{}}
	if detail {
		d, err := a.checkDetail(c, img, v, fulltag)
		if err != nil {
			return err
		}
		entry.Detail = d
	}
	return c.JSON(http.StatusOK, []map[string]map[string][]checkEntry{{img.Digest: {fulltag: {entry}}}})
}

func (a *API) checkDetail(c echo.Context, img *buildgate.Image, v *policy.Verdict, fulltag string) (*checkDetail, error) {
	ctx := c.Request().Context()
	rec, err := a.cfg.Store.Policy(ctx, v.BundleID)
	if err != nil {
		return nil, err
	}
	var b policy.Bundle
	if err := json.Unmarshal(rec.Bundle, &b); err != nil {
		return nil, err
	}
	md, err := a.cfg.Store.ImageMetadata(ctx, img.Digest)
	if err != nil {
		return nil, err
	}
	id := imageID(md)
	if id == "" {
		id = img.Digest
	}
	rows := make([][]any, 0, len(v.Findings))
	for _, f := range v.Findings {
		var wl any = false
		if f.Allowlisted != nil {
			wl = whitelisted{WhitelistName: f.Allowlisted.AllowlistName, WhitelistID: f.Allowlisted.AllowlistID, MatchedRuleID: f.Allowlisted.ItemID}
		}
		rows = append(rows, []any{id, fulltag, f.TriggerID, f.Gate, f.Trigger, f.Message, f.Effective().String(), wl, f.PolicyID})
	}
	var mapping any = false
	for i := range b.Mappings {
		if b.Mappings[i].ID == v.MappingID && v.MappingID != "" {
			mapping = b.Mappings[i]
		}
	}
	var allowed, denied any = false, false
	if v.AllowlistedImage != nil {
		allowed = v.AllowlistedImage
	}
	if v.DenylistedImage != nil {
		denied = v.DenylistedImage
	}
	at := isoTime(v.EvaluatedAt)
	return &checkDetail{
		Policy: rec.Bundle,
		Result: checkResult{
			ImageID: id, Tag: fulltag, FinalAction: v.FinalAction.String(), FinalActionReason: v.Reason.Anchore(),
			MatchedMappingRule: mapping, MatchedWhitelistedImagesRule: allowed, MatchedBlacklistedImagesRule: denied,
			EvaluationProblems: []any{}, CreatedAt: at, LastModified: at, UserID: userID,
			Result: map[string]any{
				id: evalTable{Result: tableResult{
					Header: checkHeader, RowCount: len(rows), Rows: rows, FinalAction: v.PolicyFinalAction.String(),
				}},
				"policy_name":     b.Name,
				"policy_data":     []any{},
				"whitelist_names": allowlistNames(&b, v.AllowlistIDs),
				"whitelist_data":  []any{},
			},
		},
	}, nil
}

func allowlistNames(b *policy.Bundle, ids []string) []string {
	out := []string{}
	for _, id := range ids {
		for _, w := range b.Allowlists {
			if w.ID == id {
				out = append(out, w.Name)
			}
		}
	}
	return out
}
