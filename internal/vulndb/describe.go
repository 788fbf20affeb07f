package vulndb

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/afero"
	"gorm.io/gorm"

	v6 "github.com/anchore/grype/grype/db/v6"

	"github.com/buildgate/buildgate"
)

var osFS = afero.NewOsFs()

// lowLevel is implemented by grype's v6 store (the Reader it returns); it
// exposes the connection for the counting queries grype has no API for.
type lowLevel interface {
	GetDB() *gorm.DB
}

// decoratorTables are providers whose records decorate vulnerabilities
// rather than being vulnerability records themselves.
var decoratorTables = map[string]string{
	"kev":  "known_exploited_vulnerability_handles",
	"epss": "epss_handles",
}

// describeDir opens the v6 DB in dir read-only and describes it.
func describeDir(dir string) (buildgate.DBInfo, error) {
	r, err := v6.NewReader(v6.Config{DBDirPath: dir})
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("opening db in %q: %w", dir, err)
	}
	defer r.Close()
	return describe(r)
}

// describe reads the schema version, build time, providers with their
// record counts and the distros with records from an open v6 reader.
func describe(r v6.Reader) (buildgate.DBInfo, error) {
	meta, err := r.GetDBMetadata()
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("reading db metadata: %w", err)
	}
	if meta == nil || meta.BuildTimestamp == nil {
		return buildgate.DBInfo{}, errors.New("reading db metadata: none recorded")
	}
	if meta.Model != v6.ModelVersion {
		return buildgate.DBInfo{}, fmt.Errorf("db schema model %d, want %d", meta.Model, v6.ModelVersion)
	}
	info := buildgate.DBInfo{
		SchemaVersion: fmt.Sprintf("v%d.%d.%d", meta.Model, meta.Revision, meta.Addition),
		Built:         meta.BuildTimestamp.UTC(),
	}

	providers, err := r.AllProviders()
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("reading db providers: %w", err)
	}
	if len(providers) == 0 {
		return buildgate.DBInfo{}, errors.New("db has no providers")
	}

	ll, ok := r.(lowLevel)
	if !ok {
		return buildgate.DBInfo{}, fmt.Errorf("db reader %T gives no connection", r)
	}
	db := ll.GetDB()

	var counts []struct {
		ProviderID string
		N          int
	}
	err = db.Raw("SELECT provider_id, COUNT(*) AS n FROM vulnerability_handles GROUP BY provider_id").Scan(&counts).Error
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("counting db records: %w", err)
	}
	byProvider := map[string]int{}
	for _, c := range counts {
		byProvider[c.ProviderID] = c.N
	}
	for _, p := range providers {
		table, ok := decoratorTables[p.ID]
		if !ok || byProvider[p.ID] > 0 {
			continue
		}
		var n int
		if err := db.Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error; err != nil {
			return buildgate.DBInfo{}, fmt.Errorf("counting %s records: %w", p.ID, err)
		}
		byProvider[p.ID] = n
	}
	for _, p := range providers {
		ip := buildgate.Provider{
			Name:      p.ID,
			Version:   p.Version,
			Processor: p.Processor,
			Records:   byProvider[p.ID],
		}
		if p.DateCaptured != nil {
			t := p.DateCaptured.UTC()
			ip.DateCaptured = &t
		}
		info.Providers = append(info.Providers, ip)
	}

	var oses []struct {
		Name         string
		MajorVersion string
		MinorVersion string
		LabelVersion string
	}
	err = db.Raw(`SELECT DISTINCT o.name, o.major_version, o.minor_version, o.label_version
		FROM operating_systems o
		WHERE EXISTS (SELECT 1 FROM affected_package_handles a WHERE a.operating_system_id = o.id)
		   OR EXISTS (SELECT 1 FROM unaffected_package_handles u WHERE u.operating_system_id = o.id)`).Scan(&oses).Error
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("listing db distros: %w", err)
	}
	seen := map[string]bool{}
	for _, o := range oses {
		d := distroName(o.Name, o.MajorVersion, o.MinorVersion, o.LabelVersion)
		if d != "" && !seen[d] {
			seen[d] = true
			info.Distros = append(info.Distros, d)
		}
	}
	sort.Strings(info.Distros)
	return info, nil
}

// distroName spells an OS row as "name:version" ("debian:12", "ubuntu:22.04",
// "alpine:edge").
func distroName(name, major, minor, label string) string {
	if name == "" {
		return ""
	}
	v := major
	if minor != "" {
		v += "." + minor
	}
	if v == "" {
		v = label
	}
	if v == "" {
		return strings.ToLower(name)
	}
	return strings.ToLower(name) + ":" + v
}

// age is how long ago t was, never negative.
func age(t time.Time, now time.Time) time.Duration {
	if t.IsZero() || now.Before(t) {
		return 0
	}
	return now.Sub(t)
}
