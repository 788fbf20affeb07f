package main

import (
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/vex"
)

// vexEngine is analysis.VEXEngine over internal/vex.
type vexEngine struct{}

func (vexEngine) Parse(data []byte) (string, int, error) {
	d, err := vex.Parse(data)
	if err != nil {
		return "", 0, err
	}
	return d.Format, d.Statements(), nil
}

func (vexEngine) Judge(t buildgate.VEXTarget, docs []analysis.NamedVEX) (policy.VEX, error) {
	sources := make([]vex.Source, 0, len(docs))
	for _, nd := range docs {
		d, err := vex.Parse(nd.Data)
		if err != nil {
			return nil, err
		}
		sources = append(sources, vex.Source{Name: nd.Name, Doc: d})
	}
	return vex.NewJudge(t, sources...), nil
}

func (vexEngine) Export(t buildgate.VEXTarget, ev *policy.Evaluation, now time.Time) ([]byte, error) {
	return vex.Export(t, ev, now)
}
