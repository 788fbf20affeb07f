package policy

import (
	"strings"
)

// ParamType is the type of a trigger parameter's value. Every value is a
// string in the bundle; the type says how it is read.
type ParamType string

// Parameter types.
const (
	TypeEnum   ParamType = "enum"       // one of Allowed (case-insensitive)
	TypeInt    ParamType = "int"        // a whole number, within Min..Max
	TypeFloat  ParamType = "float"      // a number, within Min..Max
	TypeBool   ParamType = "bool"       // true or false
	TypeString ParamType = "string"     // free text
	TypeRegex  ParamType = "regex"      // an RE2 regular expression
	TypeList   ParamType = "comma-list" // comma-separated items, each of ItemType (and in Allowed, if set)
)

// GateDef describes a gate and its triggers.
type GateDef struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Triggers    []TriggerDef `json:"triggers"`
}

// TriggerDef describes a trigger and its parameters.
type TriggerDef struct {
	Name string `json:"name"`
	// Aliases are other names the trigger answers to (packages/denylist
	// for packages/blacklist).
	Aliases     []string `json:"aliases,omitempty"`
	Description string   `json:"description"`
	// TriggerID says how the trigger ids of its findings are made, for
	// writing allowlist items: "vulnerability+package" or "hash" (hex MD5
	// of gate, trigger and message, as Anchore makes them), or a fixed id.
	TriggerID string     `json:"trigger_id"`
	Params    []ParamDef `json:"params"`
}

// ParamDef describes a trigger parameter. Validation reads these same
// definitions, so a form rendered from them accepts what Validate accepts.
type ParamDef struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Required    bool      `json:"required"`
	Type        ParamType `json:"type"`
	// ItemType is the type of each item of a comma-list (string or int).
	ItemType ParamType `json:"item_type,omitempty"`
	// Allowed lists the values an enum (or each item of a comma-list) may take.
	Allowed []string `json:"allowed,omitempty"`
	// Default is the value used when the parameter is absent.
	Default string   `json:"default,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	Example string   `json:"example,omitempty"`
}

func ptr(f float64) *float64 { return &f }

var (
	severityValues    = []string{"unknown", "negligible", "low", "medium", "high", "critical"}
	comparisonValues  = []string{"=", "!=", "<", ">", "<=", ">="}
	listTypeValues    = []string{"whitelist", "blacklist", "allowlist", "denylist"}
	directiveValues   = []string{"ADD", "ARG", "COPY", "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "USER", "RUN", "SHELL", "STOPSIGNAL", "VOLUME", "WORKDIR"}
	instrCheckValues  = []string{"=", "!=", "exists", "not_exists", "like", "not_like", "in", "not_in"}
	metaCheckValues   = []string{"=", "!=", ">", "<", ">=", "<=", "exists", "not_exists", "like", "not_like", "in", "not_in"}
	metaAttrValues    = []string{"size", "architecture", "os_type", "distro", "distro_version", "like_distro", "layer_count"}
	modeOpValues      = []string{"equals", "not_equals", "=", "!=", "<", ">", "<=", ">="}
	defaultSecretRule = []string{"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PRIV_KEY", "DOCKER_AUTH", "API_KEY"}
)

func cvssParams(prefix, who string) []ParamDef {
	var out []ParamDef
	for _, s := range []struct{ name, what string }{
		{"base_score", "base score"},
		{"exploitability_score", "exploitability sub-score"},
		{"impact_score", "impact sub-score"},
	} {
		out = append(out,
			ParamDef{Name: prefix + "cvss_v3_" + s.name + "_comparison", Type: TypeEnum, Allowed: comparisonValues, Default: ">=",
				Description: "How to compare the " + who + " CVSS " + s.what + " with " + prefix + "cvss_v3_" + s.name + "."},
			ParamDef{Name: prefix + "cvss_v3_" + s.name, Type: TypeFloat, Min: ptr(0), Max: ptr(10), Example: "7.0",
				Description: "Fire only if the highest " + who + " CVSS " + s.what + " compares true with this value; matches without such a score do not fire."},
		)
	}
	return out
}

// gates is the registry of every gate, trigger and parameter.
var gates = []GateDef{
	{
		Name:        "vulnerabilities",
		Description: "CVE/vulnerability checks.",
		Triggers: []TriggerDef{
			{
				Name:        "package",
				Description: "Fires once per vulnerability found on a package that meets every given criterion.",
				TriggerID:   "vulnerability+package",
				Params: append(append(append([]ParamDef{
					{Name: "package_type", Required: true, Type: TypeEnum, Allowed: []string{"all", "os", "non-os"}, Example: "all",
						Description: "Only fire for packages of this class: operating-system packages (os), language and application packages (non-os), or all."},
					{Name: "severity_comparison", Type: TypeEnum, Allowed: comparisonValues, Default: ">",
						Description: "How to compare the vulnerability's severity with severity."},
					{Name: "severity", Type: TypeEnum, Allowed: severityValues, Default: "unknown",
						Description: "Severity to compare against."},
					{Name: "fix_available", Type: TypeBool, Example: "true",
						Description: "If set, fire only when the availability of a fix equals this value."},
					{Name: "vendor_only", Type: TypeBool, Default: "true",
						Description: "If true, skip vulnerabilities the vendor marks as won't fix."},
					{Name: "max_days_since_creation", Type: TypeInt, Min: ptr(0), Example: "7",
						Description: "Fire only if the vulnerability was published at least this many days ago; an unknown publication date does not fire."},
					{Name: "max_days_since_fix", Type: TypeInt, Min: ptr(0), Example: "30",
						Description: "With fix_available=true, fire only if the fix has been available at least this many days; an unknown fix date does not fire."},
					{Name: "score_version", Type: TypeEnum, Allowed: []string{"2", "3", "4"}, Default: "3",
						Description: "Major CVSS version the cvss_v3_* and vendor_cvss_v3_* parameters compare against."},
				}, cvssParams("", "NVD")...), cvssParams("vendor_", "vendor")...),
					ParamDef{Name: "package_path_exclude", Type: TypeRegex, Example: `.*test\.jar`,
						Description: "Skip non-OS packages whose path matches this regular expression (matched from the start of the path)."},
				),
			},
			{
				Name:        "stale_feed_data",
				Description: "Fires if the vulnerability data is older than max_days_since_sync days.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "max_days_since_sync", Required: true, Type: TypeInt, Min: ptr(0), Example: "2",
						Description: "Fire if the vulnerability data was built more than this many days ago."},
				},
			},
			{
				Name:        "vulnerability_data_unavailable",
				Description: "Fires if there is no vulnerability data for the image's distro, so its OS packages cannot be checked.",
				TriggerID:   "hash",
				Params:      []ParamDef{},
			},
			{
				Name:        "blacklist",
				Aliases:     []string{"denylist"},
				Description: "Fires once per match of any listed vulnerability.",
				TriggerID:   "vulnerability+package",
				Params: []ParamDef{
					{Name: "vulnerability_ids", Required: true, Type: TypeList, ItemType: TypeString, Example: "CVE-2021-44228,CVE-2014-0160",
						Description: "Vulnerability ids (or their aliases) that fire when found."},
					{Name: "vendor_only", Type: TypeBool, Default: "true",
						Description: "If true, skip matches the vendor marks as won't fix."},
				},
			},
			{
				Name:        "known_exploited",
				Description: "Fires once per vulnerability listed in CISA's Known Exploited Vulnerabilities catalog.",
				TriggerID:   "vulnerability+package",
				Params: []ParamDef{
					{Name: "fix_available", Type: TypeBool,
						Description: "If set, fire only when the availability of a fix equals this value."},
				},
			},
			{
				Name:        "epss",
				Description: "Fires once per vulnerability whose EPSS exploit probability compares true with threshold; vulnerabilities without an EPSS score do not fire.",
				TriggerID:   "vulnerability+package",
				Params: []ParamDef{
					{Name: "threshold", Required: true, Type: TypeFloat, Min: ptr(0), Max: ptr(1), Example: "0.5",
						Description: "EPSS probability (0 to 1) to compare against."},
					{Name: "comparison", Type: TypeEnum, Allowed: comparisonValues, Default: ">=",
						Description: "How to compare the vulnerability's EPSS probability with threshold."},
				},
			},
		},
	},
	{
		Name:        "dockerfile",
		Description: "Checks the Dockerfile if one was provided, or one guessed from the image history if not.",
		Triggers: []TriggerDef{
			{
				Name:        "instruction",
				Description: "Fires for each instruction of the given kind that meets the check (once if not_exists and the instruction is absent).",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "instruction", Required: true, Type: TypeEnum, Allowed: directiveValues, Example: "HEALTHCHECK",
						Description: "The Dockerfile instruction to check."},
					{Name: "check", Required: true, Type: TypeEnum, Allowed: instrCheckValues, Example: "not_exists",
						Description: "The check: compare the instruction's arguments with value (like and not_like take a regular expression; in and not_in a comma list)."},
					{Name: "value", Type: TypeString, Example: "scratch",
						Description: "The value to check against; required by every check but exists and not_exists."},
					{Name: "actual_dockerfile_only", Type: TypeBool, Default: "false",
						Description: "Only check a Dockerfile that was provided, not one guessed from history."},
				},
			},
			{
				Name:        "effective_user",
				Description: "Checks the effective user (the last USER, else the image's configured user, else root) against a list.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "users", Required: true, Type: TypeList, ItemType: TypeString, Example: "root,docker",
						Description: "User names to check the effective user against."},
					{Name: "type", Required: true, Type: TypeEnum, Allowed: listTypeValues, Example: "blacklist",
						Description: "whitelist: fire unless the user is listed; blacklist: fire if it is."},
				},
			},
			{
				Name:        "exposed_ports",
				Description: "Checks the ports the image exposes against a list.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "ports", Required: true, Type: TypeList, ItemType: TypeInt, Min: ptr(0), Max: ptr(65535), Example: "22,8080",
						Description: "Port numbers; 0 stands for any port."},
					{Name: "type", Required: true, Type: TypeEnum, Allowed: listTypeValues, Example: "blacklist",
						Description: "whitelist: fire for each exposed port not listed; blacklist: fire for each listed port exposed."},
					{Name: "actual_dockerfile_only", Type: TypeBool, Default: "false",
						Description: "Only check a Dockerfile that was provided, not one guessed from history."},
				},
			},
			{
				Name:        "no_dockerfile_provided",
				Description: "Fires if the image was analysed without a Dockerfile.",
				TriggerID:   "hash",
				Params:      []ParamDef{},
			},
		},
	},
	{
		Name:        "packages",
		Description: "Package checks.",
		Triggers: []TriggerDef{
			{
				Name:        "required_package",
				Description: "Fires if a package (optionally at a version) is not in the image.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "name", Required: true, Type: TypeString, Example: "libssl",
						Description: "Name of the package that must be installed."},
					{Name: "version", Type: TypeString, Example: "1.10.3rc3",
						Description: "Version the package must have."},
					{Name: "version_match_type", Type: TypeEnum, Allowed: []string{"exact", "minimum"}, Default: "exact",
						Description: "exact: the version must equal version; minimum: it must be at least version."},
				},
			},
			{
				Name:        "blacklist",
				Aliases:     []string{"denylist"},
				Description: "Fires for each installed package with the given name (and version, if given).",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "name", Required: true, Type: TypeString, Example: "openssh-server",
						Description: "Package name to deny."},
					{Name: "version", Type: TypeString, Example: "1.0.1",
						Description: "Deny only this version."},
				},
			},
			{
				Name:        "verify",
				Description: "Fires for each file a package database (dpkg, rpm) lists that is missing from the image or whose content digest differs from the database's (config files are only checked for missing).",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "only_packages", Type: TypeList, ItemType: TypeString, Example: "libssl,openssl",
						Description: "Package names to limit verification to."},
					{Name: "only_directories", Type: TypeList, ItemType: TypeString, Example: "/usr,/var/lib",
						Description: "Directories to limit verification to."},
					{Name: "check", Type: TypeEnum, Allowed: []string{"changed", "missing"},
						Description: "The check to perform instead of all."},
				},
			},
		},
	},
	{
		Name:        "licenses",
		Description: "Checks the licenses of installed packages.",
		Triggers: []TriggerDef{
			{
				Name:        "blacklist_exact_match",
				Aliases:     []string{"denylist_exact_match"},
				Description: "Fires if any package has one of the given licenses (exact match).",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "licenses", Required: true, Type: TypeList, ItemType: TypeString, Example: "GPLv2+,GPL-3+,BSD-2-clause",
						Description: "License names to deny."},
				},
			},
			{
				Name:        "blacklist_partial_match",
				Aliases:     []string{"denylist_partial_match"},
				Description: "Fires if any package has a license containing one of the given strings.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "licenses", Required: true, Type: TypeList, ItemType: TypeString, Example: "LGPL,BSD",
						Description: "Substrings of license names to deny."},
				},
			},
		},
	},
	{
		Name:        "secret_scans",
		Description: "Checks for secrets found in the image's files.",
		Triggers: []TriggerDef{
			{
				Name:        "content_regex_checks",
				Description: "Fires for each file and secret rule that matched (match_type=found), or once if none matched (notfound). Findings name the file and rule, never the secret.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "content_regex_name", Type: TypeList, ItemType: TypeString, Example: "AWS_ACCESS_KEY",
						Description: "Names of the secret rules to consider (the scanner's rules are " + strings.Join(defaultSecretRule, ", ") + "); unset considers every rule."},
					{Name: "filename_regex", Type: TypeRegex, Example: "/etc/.*",
						Description: "Only consider files whose path matches this regular expression (from the start of the path)."},
					{Name: "match_type", Type: TypeEnum, Allowed: []string{"found", "notfound"}, Default: "found",
						Description: "found: fire when a secret is found; notfound: fire when none is."},
				},
			},
		},
	},
	{
		Name:        "files",
		Description: "Checks the image's files: names, content matches and attributes.",
		Triggers: []TriggerDef{
			{
				Name:        "content_regex_match",
				Description: "Fires for each file with a line where a content regex matched. The gate searches the text files of each image it analyses for the regex_name of every stored bundle's rules; images analysed before a regex was added are searched for it at their next analysis.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "regex_name", Type: TypeRegex, Example: "PASSWORD *=",
						Description: "Regular expression (RE2) searched for in each line of the image's text files; the rule fires for the files where it matched. Unset fires for every content regex that matched."},
				},
			},
			{
				Name:        "name_match",
				Description: "Fires for each file whose path matches a regular expression.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "regex", Required: true, Type: TypeRegex, Example: `.*\.pem`,
						Description: "Regular expression matched against file paths (from the start of the path)."},
				},
			},
			{
				Name:        "attribute_match",
				Description: "Fires if a file exists with all the given attributes (or, with skip_missing=false, if it is missing).",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "filename", Required: true, Type: TypeString, Example: "/etc/passwd",
						Description: "Path of the file to check."},
					{Name: "checksum_algorithm", Type: TypeEnum, Allowed: []string{"sha256"}, Default: "sha256",
						Description: "Checksum algorithm."},
					{Name: "checksum", Type: TypeString, Example: "832cd0f75b227d13aac82b1f70b7f90191a4186c151f9db50851d209c45ede11",
						Description: "Checksum (hex) to compare the file's with."},
					{Name: "checksum_match", Type: TypeEnum, Allowed: []string{"equals", "not_equals"}, Default: "equals",
						Description: "How to compare checksums."},
					{Name: "mode", Type: TypeString, Example: "00644",
						Description: "File mode, in octal, to compare the file's permission bits (with setuid, setgid and sticky) with."},
					{Name: "mode_op", Type: TypeEnum, Allowed: modeOpValues, Default: "equals",
						Description: "How to compare modes."},
					{Name: "skip_missing", Type: TypeBool, Default: "true",
						Description: "If true, do not fire when the file is missing; if false, fire when it is."},
				},
			},
			{
				Name:        "suid_or_guid_set",
				Description: "Fires for each file with the setuid or setgid bit set.",
				TriggerID:   "hash",
				Params:      []ParamDef{},
			},
		},
	},
	{
		Name:        "metadata",
		Description: "Checks image metadata: size, OS, distro, architecture, layers.",
		Triggers: []TriggerDef{
			{
				Name:        "attribute",
				Description: "Fires if an image attribute meets the check.",
				TriggerID:   "hash",
				Params: []ParamDef{
					{Name: "attribute", Required: true, Type: TypeEnum, Allowed: metaAttrValues, Example: "size",
						Description: "The attribute to check."},
					{Name: "check", Required: true, Type: TypeEnum, Allowed: metaCheckValues, Example: ">",
						Description: "The check (like and not_like take a regular expression; in and not_in a comma list)."},
					{Name: "value", Type: TypeString, Example: "1GB",
						Description: "The value to check against; required by every check but exists and not_exists. Sizes take units: 100MB, 1.5GB (powers of 1000), 512MiB (powers of 1024)."},
				},
			},
		},
	},
	{
		Name:        "always",
		Description: "Fires unconditionally, e.g. to block a repository outright or to test mappings and allowlists.",
		Triggers: []TriggerDef{
			{
				Name:        "always",
				Description: "Fires unconditionally.",
				TriggerID:   "always",
				Params:      []ParamDef{},
			},
		},
	},
}

// Definitions returns a copy of every gate, trigger and parameter the
// engine knows, in a stable order. It is JSON-serialisable; validation is
// driven by the same definitions.
func Definitions() []GateDef {
	out := make([]GateDef, len(gates))
	for i, g := range gates {
		out[i] = g
		out[i].Triggers = make([]TriggerDef, len(g.Triggers))
		for j, t := range g.Triggers {
			out[i].Triggers[j] = t
			out[i].Triggers[j].Aliases = append([]string(nil), t.Aliases...)
			out[i].Triggers[j].Params = make([]ParamDef, len(t.Params))
			for k, p := range t.Params {
				p.Allowed = append([]string(nil), p.Allowed...)
				if p.Min != nil {
					p.Min = ptr(*p.Min)
				}
				if p.Max != nil {
					p.Max = ptr(*p.Max)
				}
				out[i].Triggers[j].Params[k] = p
			}
		}
	}
	return out
}

// LookupTrigger returns the definition of a gate's trigger, by name or
// alias, in any case.
func LookupTrigger(gate, trigger string) (GateDef, TriggerDef, bool) {
	g, t := lookup(gate, trigger)
	if t == nil {
		return GateDef{}, TriggerDef{}, false
	}
	return *g, *t, true
}

func lookup(gate, trigger string) (*GateDef, *TriggerDef) {
	g := lookupGate(gate)
	if g == nil {
		return nil, nil
	}
	trigger = strings.ToLower(strings.TrimSpace(trigger))
	for i := range g.Triggers {
		t := &g.Triggers[i]
		if t.Name == trigger {
			return g, t
		}
		for _, a := range t.Aliases {
			if a == trigger {
				return g, t
			}
		}
	}
	return g, nil
}

func lookupGate(gate string) *GateDef {
	gate = strings.ToLower(strings.TrimSpace(gate))
	for i := range gates {
		if gates[i].Name == gate {
			return &gates[i]
		}
	}
	return nil
}

func (t *TriggerDef) param(name string) *ParamDef {
	for i := range t.Params {
		if t.Params[i].Name == name {
			return &t.Params[i]
		}
	}
	return nil
}
