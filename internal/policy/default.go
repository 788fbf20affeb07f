package policy

// DefaultBundle returns Anchore Engine's default bundle, with its ids:
// one policy, an empty global allowlist, and one mapping (*/*/tag *) that
// applies both to every image. The policy stops on exposed port 22 and on
// vulnerabilities above medium, and warns on a missing HEALTHCHECK,
// vulnerability data older than 2 days, missing distro data and medium
// vulnerabilities.
func DefaultBundle() *Bundle {
	const (
		bundleID    = "2c53a13c-1765-11e8-82ef-23527761d060"
		policyID    = "48e6f7d6-1765-11e8-b5f9-8b6f228548b6"
		allowlistID = "37fd763e-1765-11e8-add4-3b16c029ac5c"
		mappingID   = "c4f9bf74-dc38-4ddf-b5cf-00e9c0074611"
	)
	b := &Bundle{
		ID:      bundleID,
		Name:    "Default bundle",
		Comment: "Default bundle",
		Version: BundleVersion,
		Policies: []Policy{{
			ID:      policyID,
			Name:    "DefaultPolicy",
			Comment: "System default policy",
			Version: BundleVersion,
			Rules: []Rule{
				{ID: "ce7b8000-829b-4c27-8122-69cd59018400", Gate: "dockerfile", Trigger: "exposed_ports", Action: "STOP",
					Params: []Param{{Name: "ports", Value: "22"}, {Name: "type", Value: "blacklist"}}},
				{ID: "312d9e41-1c05-4e2f-ad89-b7d34b0855bb", Gate: "dockerfile", Trigger: "instruction", Action: "WARN",
					Params: []Param{{Name: "instruction", Value: "HEALTHCHECK"}, {Name: "check", Value: "not_exists"}}},
				{ID: "6b5c14e7-a6f7-48cc-99d2-959273a2c6fa", Gate: "vulnerabilities", Trigger: "stale_feed_data", Action: "WARN",
					Params: []Param{{Name: "max_days_since_sync", Value: "2"}}},
				{ID: "3e79ea94-18c4-4d26-9e29-3b9172a62c2e", Gate: "vulnerabilities", Trigger: "vulnerability_data_unavailable", Action: "WARN",
					Params: []Param{}},
				{ID: "6063fdde-b1c5-46af-973a-915739451ac4", Gate: "vulnerabilities", Trigger: "package", Action: "WARN",
					Params: []Param{{Name: "package_type", Value: "all"}, {Name: "severity_comparison", Value: "="}, {Name: "severity", Value: "medium"}}},
				{ID: "b30e8abc-444f-45b1-8a37-55be1b8c8bb5", Gate: "vulnerabilities", Trigger: "package", Action: "STOP",
					Params: []Param{{Name: "package_type", Value: "all"}, {Name: "severity_comparison", Value: ">"}, {Name: "severity", Value: "medium"}}},
			},
		}},
		Allowlists: []Allowlist{{
			ID:      allowlistID,
			Name:    "Global Whitelist",
			Version: BundleVersion,
			Comment: "Default global whitelist",
			Items:   []AllowlistItem{},
		}},
		Mappings: []Mapping{{
			ID:           mappingID,
			Name:         "default",
			Registry:     "*",
			Repository:   "*",
			Image:        ImageSelector{Type: ImageTypeTag, Value: "*"},
			PolicyID:     policyID,
			AllowlistIDs: []string{allowlistID},
		}},
	}
	b.normalize()
	return b
}
