// Package internal_test asserts the import rules of docs/architecture.md:
// the core (the domain package buildgate at the module root, policy,
// report, the wire types) imports only the standard library, the use cases point inward,
// adapters never import each other, and the thin CI step binaries never
// pull in syft, grype, SQLite or echo. A rule naming a package that does
// not exist fails.
package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/buildgate/buildgate"

// path returns the import path of a package named relative to the module
// root; "." is the root package, buildgate, the domain.
func path(rel string) string {
	if rel == "." {
		return module
	}
	return module + "/" + rel
}

// rel names a package of the module relative to its root ("." for the
// root), and says whether it is one.
func rel(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(importPath, module+"/")
	return r, ok
}

// deps lists every package pkg depends on, transitively.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var list []string
	for _, l := range strings.Fields(string(out)) {
		if l != pkg {
			list = append(list, l)
		}
	}
	return list
}

// mustExist fails the test when pkg is not a package of the module: a
// rule about a package that was renamed or removed must be updated, not
// skipped.
func mustExist(t *testing.T, pkg string) {
	t.Helper()
	if out, err := exec.Command("go", "list", pkg).CombinedOutput(); err != nil {
		t.Fatalf("the import rules name %s, which is not a package (renamed or removed? update the rule): %v\n%s", pkg, err, out)
	}
}

// assertOnly fails for each module package pkg depends on that is not in
// allowed (paths relative to the module).
func assertOnly(t *testing.T, pkg string, allowed []string) {
	t.Helper()
	mustExist(t, path(pkg))
	for _, d := range deps(t, path(pkg)) {
		r, ok := rel(d)
		if !ok {
			continue
		}
		if !slices.Contains(allowed, r) {
			t.Errorf("%s imports %s; of this module it may import only %v", pkg, d, allowed)
		}
	}
}

func TestCoreImportsOnlyStdlib(t *testing.T) {
	allowed := map[string][]string{
		".":                 nil,
		"internal/policy":   {"."},
		"internal/report":   {".", "internal/policy"},
		"internal/api":      nil,
		"internal/client":   {"internal/api"},
		"internal/secret":   nil,
		"internal/netguard": nil,
	}
	for pkg, ok := range allowed {
		t.Run(pkg, func(t *testing.T) {
			mustExist(t, path(pkg))
			for _, d := range deps(t, path(pkg)) {
				okDep := false
				for _, a := range ok {
					if d == path(a) {
						okDep = true
					}
				}
				if !okDep {
					t.Errorf("%s imports %s; it may import only the standard library and %v", pkg, d, ok)
				}
			}
		})
	}
}

func TestAdaptersDoNotImportEachOther(t *testing.T) {
	adapters := []string{"internal/registry", "internal/catalog", "internal/vulndb", "internal/store/sqlite", "internal/store/postgres", "internal/server", "internal/notify", "internal/vex"}
	for _, a := range adapters {
		t.Run(a, func(t *testing.T) {
			mustExist(t, module+"/"+a)
			for _, d := range deps(t, module+"/"+a) {
				for _, other := range adapters {
					if other != a && (d == module+"/"+other || strings.HasPrefix(d, module+"/"+other+"/")) {
						t.Errorf("%s imports the adapter %s", a, d)
					}
				}
			}
		})
	}
}

func TestStepBinariesStayThin(t *testing.T) {
	heavy := []string{"github.com/anchore/", "modernc.org/sqlite", "github.com/glebarez/", "github.com/labstack/echo", "github.com/google/go-containerregistry/pkg/v1/remote"}
	for _, pkg := range []string{"internal/step", "jenkins", "actions", "gitlab-ci"} {
		t.Run(pkg, func(t *testing.T) {
			mustExist(t, module+"/"+pkg)
			for _, d := range deps(t, module+"/"+pkg) {
				for _, h := range heavy {
					if strings.HasPrefix(d, h) {
						t.Errorf("%s pulls in %s", pkg, d)
					}
				}
			}
		})
	}
}

// TestGatectlImportsOnlyClientAndAPI keeps gatectl a thin client: of the
// module it imports only the client and the wire types, and nothing else
// outside the standard library.
func TestGatectlImportsOnlyClientAndAPI(t *testing.T) {
	allowed := map[string]bool{module + "/internal/client": true, module + "/internal/api": true}
	for _, d := range deps(t, module+"/gatectl") {
		if !allowed[d] {
			t.Errorf("gatectl imports %s; it may import only internal/client, internal/api and the standard library", d)
		}
	}
}

// TestUseCasesPointInward asserts that the use cases depend only on the
// core and on each other inward: analysis on the domain, policies and
// sealing; alert on the same, never on analysis (it declares the small
// interfaces it needs) and never on an adapter.
func TestUseCasesPointInward(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
	}{
		{name: "internal/analysis", allowed: []string{".", "internal/policy", "internal/secret"}},
		{name: "internal/alert", allowed: []string{".", "internal/policy", "internal/secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertOnly(t, tt.name, tt.allowed)
		})
	}
}
