package catalog

// syft's RPM cataloger needs a "sqlite" driver; use the one grype links.
import _ "github.com/glebarez/go-sqlite"
