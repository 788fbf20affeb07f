// Package internal_test asserts DESIGN.md's import rules: the core imports
// only the standard library, adapters never import each other, and the thin
// CI step binaries never pull in syft, grype, SQLite or echo.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/buildgate/buildgate"

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

func exists(pkg string) bool {
	return exec.Command("go", "list", pkg).Run() == nil
}

func TestCoreImportsOnlyStdlib(t *testing.T) {
	allowed := map[string][]string{
		"internal/image":    nil,
		"internal/policy":   {"internal/image"},
		"internal/report":   {"internal/image", "internal/policy"},
		"internal/api":      nil,
		"internal/client":   {"internal/api"},
		"internal/secret":   nil,
		"internal/netguard": nil,
	}
	for pkg, ok := range allowed {
		if !exists(module + "/" + pkg) {
			continue
		}
		t.Run(pkg, func(t *testing.T) {
			for _, d := range deps(t, module+"/"+pkg) {
				okDep := false
				for _, a := range ok {
					if d == module+"/"+a {
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
	adapters := []string{"internal/registry", "internal/catalog", "internal/vulndb", "internal/store/sqlite", "internal/store/postgres", "internal/server", "internal/notify"}
	for _, a := range adapters {
		t.Run(a, func(t *testing.T) {
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
		if !exists(module + "/" + pkg) {
			continue
		}
		t.Run(pkg, func(t *testing.T) {
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
