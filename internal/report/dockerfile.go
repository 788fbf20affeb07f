package report

import (
	"regexp"
	"slices"
	"strings"

	"github.com/buildgate/buildgate/internal/policy"
)

// dockerfile is a parsed Dockerfile (policy.ParseDockerfile, the parser
// the policy engine uses), enough to point at its lines.
type dockerfile struct {
	instrs []policy.Instruction
	final  int // index of the final stage's FROM, -1 if none
}

func parseDockerfile(src string) *dockerfile {
	df := &dockerfile{instrs: policy.ParseDockerfile(src), final: -1}
	for i, in := range df.instrs {
		if in.Cmd == "FROM" {
			df.final = i
		}
	}
	return df
}

// finalStage returns the instructions of the final stage (all of them
// when there is no FROM).
func (d *dockerfile) finalStage() []policy.Instruction {
	if d.final < 0 {
		return d.instrs
	}
	return d.instrs[d.final:]
}

// fromLine is the final stage's FROM line, else the first instruction's
// line, else 1.
func (d *dockerfile) fromLine() int {
	if d.final >= 0 {
		return d.instrs[d.final].Line
	}
	if len(d.instrs) > 0 {
		return d.instrs[0].Line
	}
	return 1
}

var (
	instructionMsgRE = regexp.MustCompile(`(?s)^Dockerfile directive '([^']*)' check '[^']*' matched against '.*' for line '(.*)'$`)
	exposedPortRE    = regexp.MustCompile(`port \(([^)]*)\)`)
)

// lineOf returns the Dockerfile line a finding points at: the matching
// instruction for dockerfile-gate findings (EXPOSE for exposed_ports, the
// effective USER for effective_user, the instruction itself for
// instruction), else the final stage's FROM line.
func (d *dockerfile) lineOf(f *policy.Finding) int {
	if f.Gate != "dockerfile" {
		return d.fromLine()
	}
	final := d.finalStage()
	switch f.Trigger {
	case "exposed_ports":
		var ports []string
		if m := exposedPortRE.FindStringSubmatch(f.Message); m != nil {
			ports = []string{m[1]}
		}
		for _, in := range final {
			if in.Cmd != "EXPOSE" {
				continue
			}
			if len(ports) == 0 || slices.Contains(strings.Fields(in.Raw), ports[0]) {
				return in.Line
			}
		}
		for _, in := range final {
			if in.Cmd == "EXPOSE" {
				return in.Line
			}
		}
	case "effective_user":
		for i := len(final) - 1; i >= 0; i-- {
			if final[i].Cmd == "USER" {
				return final[i].Line
			}
		}
	case "instruction":
		if m := instructionMsgRE.FindStringSubmatch(f.Message); m != nil {
			cmd := strings.ToUpper(m[1])
			for _, in := range d.instrs {
				if in.Cmd == cmd && in.Raw == m[2] {
					return in.Line
				}
			}
			for _, in := range d.instrs {
				if in.Cmd == cmd {
					return in.Line
				}
			}
		}
	}
	return d.fromLine()
}
