package buildgate

// Action is something a token may be allowed to do. The gate's three faces
// (/v1, the Anchore API and the console) map each of their routes to one
// action and ask Role.Can, so a role has one rule everywhere.
type Action string

// Actions, as the README's role table names them.
const (
	// ActReadImages: list and read images, their SBOMs, packages, files,
	// vulnerabilities, evaluations and reports; read the DB status and
	// the runtime inventory.
	ActReadImages Action = "read images"
	// ActSubmitImages: submit images by reference, upload image archives
	// and SBOMs, push runtime inventories. A tag given with an upload or
	// SBOM is kept as a label, never bound (see Role.Can(ActBindTags)).
	ActSubmitImages Action = "submit images"
	// ActBindTags: bind a tag to a digest without the tag's registry
	// serving that digest (a tag given with an upload or SBOM).
	ActBindTags Action = "bind tags"
	// ActDeleteImages: delete images.
	ActDeleteImages Action = "delete images"
	// ActReadPolicies: list, read and export policy bundles.
	ActReadPolicies Action = "read policies"
	// ActWritePolicies: add, change, activate and delete policy bundles.
	ActWritePolicies Action = "write policies"
	// ActManageRegistries: read and change registry credentials.
	ActManageRegistries Action = "manage registries"
	// ActReadSubscriptions: list and read subscriptions.
	ActReadSubscriptions Action = "read subscriptions"
	// ActWriteSubscriptions: create, activate, change and delete
	// subscriptions, and read their deliveries.
	ActWriteSubscriptions Action = "write subscriptions"
	// ActManageAlerts: alerts, notification channels and their deliveries.
	ActManageAlerts Action = "manage alerts"
	// ActImportDB: import a vulnerability DB.
	ActImportDB Action = "import the vulnerability DB"
	// ActManageTokens: list, create and revoke API tokens.
	ActManageTokens Action = "manage tokens"
	// ActReadMetrics: read /metrics.
	ActReadMetrics Action = "read metrics"
	// ActProfile: read Go's runtime profiles under /debug/pprof/.
	ActProfile Action = "profile the gate"
	// ActReviewAdmission: send Kubernetes admission reviews (the API
	// server's).
	ActReviewAdmission Action = "review admissions"
	// ActManageAdmission: admission rules, and the decisions they made.
	ActManageAdmission Action = "manage admission rules"
)

// Actions lists every action, in the order of the README's table.
func Actions() []Action {
	return []Action{
		ActReadImages, ActSubmitImages, ActBindTags, ActDeleteImages,
		ActReadPolicies, ActWritePolicies, ActManageRegistries,
		ActReadSubscriptions, ActWriteSubscriptions, ActManageAlerts,
		ActImportDB, ActManageTokens, ActReadMetrics, ActProfile,
		ActReviewAdmission, ActManageAdmission,
	}
}

// grants is the one authorization table: what each role may do. admin may
// do everything.
var grants = map[Role]map[Action]bool{
	RoleCI: {
		ActReadImages:        true,
		ActSubmitImages:      true,
		ActReadSubscriptions: true,
		ActReadMetrics:       true,
	},
	RoleAdmission: {
		ActReviewAdmission: true,
	},
}

// Can reports whether a token of role r may do a.
func (r Role) Can(a Action) bool {
	if r == RoleAdmin {
		return true
	}
	return grants[r][a]
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleCI || r == RoleAdmission }

// Allow returns nil when t may do a and an EFORBIDDEN error naming the
// token, its role and the action otherwise.
func Allow(t *Token, a Action) error {
	if t == nil {
		return Errorf(EUNAUTHORIZED, "not authenticated")
	}
	if t.Role.Can(a) {
		return nil
	}
	return Errorf(EFORBIDDEN, "token %q has role %s, which may not %s; use an admin token", t.Name, t.Role, a)
}
