package policy

import (
	"reflect"
	"slices"
	"testing"

	"github.com/buildgate/buildgate"
)

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n" +
		"FROM golang:1.22 AS build\n" +
		"# a comment\n" +
		"\n" +
		"run apt-get update && \\\n" +
		"    # comment inside a continuation\n" +
		"    apt-get install -y curl\n" +
		"EXPOSE 22 8080/tcp\n" +
		"CMD [\"nginx\", \"-g\", \"daemon off;\"]\n" +
		"HEALTHCHECK --interval=5s CMD curl -f http://localhost/ || exit 1\n" +
		"RUN <<EOF\n" +
		"echo hello\n" +
		"USER notaninstruction\n" +
		"EOF\n" +
		"USER [\"app\"]\n" +
		"ENV A=1 \\\n" +
		"  B=2"
	got := ParseDockerfile(src)
	want := []Instruction{
		{Cmd: "FROM", Raw: "golang:1.22 AS build", Args: []string{"golang:1.22", "AS", "build"}, Line: 2},
		{Cmd: "RUN", Raw: "apt-get update && apt-get install -y curl", Args: []string{"apt-get", "update", "&&", "apt-get", "install", "-y", "curl"}, Line: 5},
		{Cmd: "EXPOSE", Raw: "22 8080/tcp", Args: []string{"22", "8080/tcp"}, Line: 8},
		{Cmd: "CMD", Raw: `["nginx", "-g", "daemon off;"]`, Args: []string{"nginx", "-g", "daemon off;"}, JSON: true, Line: 9},
		{Cmd: "HEALTHCHECK", Raw: "--interval=5s CMD curl -f http://localhost/ || exit 1", Args: []string{"--interval=5s", "CMD", "curl", "-f", "http://localhost/", "||", "exit", "1"}, Line: 10},
		{Cmd: "RUN", Raw: "<<EOF\necho hello\nUSER notaninstruction", Args: []string{"<<EOF"}, Line: 11},
		{Cmd: "USER", Raw: `["app"]`, Args: []string{"app"}, JSON: true, Line: 15},
		{Cmd: "ENV", Raw: "A=1 B=2", Args: []string{"A=1", "B=2"}, Line: 16},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseDockerfile:\n got %+v\nwant %+v", got, want)
	}

	// The escape directive.
	got = ParseDockerfile("# escape=`\nFROM x\nRUN dir `\n  c:\\\n")
	if len(got) != 2 || got[1].Raw != `dir c:\` {
		t.Errorf("escape directive: %+v", got)
	}
}

func TestHistoryLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"nop", `/bin/sh -c #(nop)  EXPOSE 80/tcp`, "EXPOSE 80/tcp"},
		{"nop cmd", `/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]`, `CMD ["nginx" "-g" "daemon off;"]`},
		{"shell", `/bin/sh -c apt-get update`, "RUN apt-get update"},
		{"shell with args", `|2 A=1 B=2 /bin/sh -c make`, "RUN make"},
		{"buildkit run", `RUN /bin/sh -c apt-get update # buildkit`, "RUN apt-get update"},
		{"buildkit expose", `EXPOSE map[80/tcp:{} 443/tcp:{}]`, "EXPOSE 80/tcp 443/tcp"},
		{"old expose", `/bin/sh -c #(nop) EXPOSE map[22/tcp:{}]`, "EXPOSE 22/tcp"},
		{"buildkit user", `USER nginx`, "USER nginx"},
		{"add", `/bin/sh -c #(nop) ADD file:abc in / `, "ADD file:abc in /"},
		{"unknown", `cmd /S /C echo hi`, "RUN cmd /S /C echo hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := historyLine(tt.in); got != tt.want {
				t.Errorf("historyLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// dockerfileInput is an image with an actual Dockerfile.
func dockerfileInput(df string) Input {
	return Input{Facts: buildgate.Facts{Digest: "sha256:d", Dockerfile: df}}
}

// historyInput is an image without a Dockerfile whose history guesses one.
func historyInput(user string, exposed []string, createdBy ...string) Input {
	in := Input{Facts: buildgate.Facts{Digest: "sha256:h"}}
	for _, c := range createdBy {
		in.Facts.Metadata.History = append(in.Facts.Metadata.History, buildgate.HistoryEntry{CreatedBy: c})
	}
	in.Facts.Metadata.User = user
	in.Facts.Metadata.ExposedPorts = exposed
	return in
}

func TestDockerfileInstruction(t *testing.T) {
	df := dockerfileInput("FROM debian:12\nRUN apt-get update\nENV PASSWORD=secret\nUSER app\nEXPOSE 8080\n")
	guessed := historyInput("", nil, "/bin/sh -c #(nop) ADD file:x in /", "/bin/sh -c apt-get update")
	none := Input{Facts: buildgate.Facts{Digest: "sha256:n"}}
	tests := []struct {
		name   string
		params []Param
		in     Input
		want   []string
	}{
		{"not_exists fires when absent", kv("instruction", "HEALTHCHECK", "check", "not_exists"), df,
			[]string{"Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"}},
		{"not_exists quiet when present", kv("instruction", "user", "check", "not_exists"), df, []string{}},
		{"exists", kv("instruction", "RUN", "check", "exists"), df,
			[]string{"Dockerfile directive 'RUN' check 'exists' matched against '' for line 'apt-get update'"}},
		{"=", kv("instruction", "FROM", "check", "=", "value", "debian:12"), df,
			[]string{"Dockerfile directive 'FROM' check '=' matched against 'debian:12' for line 'debian:12'"}},
		{"!=", kv("instruction", "FROM", "check", "!=", "value", "scratch"), df,
			[]string{"Dockerfile directive 'FROM' check '!=' matched against 'scratch' for line 'debian:12'"}},
		{"like", kv("instruction", "ENV", "check", "like", "value", ".*PASS.*"), df,
			[]string{"Dockerfile directive 'ENV' check 'like' matched against '.*PASS.*' for line 'PASSWORD=secret'"}},
		{"like anchors at start", kv("instruction", "ENV", "check", "like", "value", "SECRET"), df, []string{}},
		{"not_like", kv("instruction", "FROM", "check", "not_like", "value", "registry\\.internal/.*"), df,
			[]string{"Dockerfile directive 'FROM' check 'not_like' matched against 'registry\\.internal/.*' for line 'debian:12'"}},
		{"in", kv("instruction", "USER", "check", "in", "value", "root, app"), df,
			[]string{"Dockerfile directive 'USER' check 'in' matched against 'root, app' for line 'app'"}},
		{"not_in", kv("instruction", "USER", "check", "not_in", "value", "root,app"), df, []string{}},
		{"guessed dockerfile evaluates", kv("instruction", "HEALTHCHECK", "check", "not_exists"), guessed,
			[]string{"Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"}},
		{"guessed run", kv("instruction", "RUN", "check", "=", "value", "apt-get update"), guessed,
			[]string{"Dockerfile directive 'RUN' check '=' matched against 'apt-get update' for line 'apt-get update'"}},
		{"actual_dockerfile_only skips guessed", kv("instruction", "HEALTHCHECK", "check", "not_exists", "actual_dockerfile_only", "true"), guessed, []string{}},
		{"actual_dockerfile_only with actual", kv("instruction", "HEALTHCHECK", "check", "not_exists", "actual_dockerfile_only", "true"), df,
			[]string{"Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"}},
		{"no dockerfile and no history skips", kv("instruction", "HEALTHCHECK", "check", "not_exists"), none, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "dockerfile", "instruction", tt.params, tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHealthcheckTriggerIDIsAnchores(t *testing.T) {
	fs := fire(t, "dockerfile", "instruction", kv("instruction", "HEALTHCHECK", "check", "not_exists"), dockerfileInput("FROM x\n"))
	// The id Anchore Engine gives this finding, seen in the wild.
	if len(fs) != 1 || fs[0].TriggerID != "41cb7cdf04850e33a11f80c42bf660b3" {
		t.Fatalf("findings = %+v", fs)
	}
}

func TestEffectiveUser(t *testing.T) {
	tests := []struct {
		name   string
		params []Param
		in     Input
		want   []string
	}{
		{"default root, blacklisted", kv("users", "root", "type", "blacklist"), dockerfileInput("FROM x\nRUN true\n"),
			[]string{"User root found as effective user, which is explicity not allowed list"}},
		{"last USER of final stage", kv("users", "root", "type", "blacklist"), dockerfileInput("FROM x AS b\nUSER app\nFROM y\nUSER nobody\nUSER root\nUSER app:app\n"), []string{}},
		{"earlier stage's USER does not count", kv("users", "root", "type", "blacklist"), dockerfileInput("FROM x AS b\nUSER app\nFROM y\n"),
			[]string{"User root found as effective user, which is explicity not allowed list"}},
		{"uid 0 is root", kv("users", "root", "type", "blacklist"), dockerfileInput("FROM x\nUSER 0:0\n"),
			[]string{"User 0:0 found as effective user, which is explicity not allowed list"}},
		{"whitelist", kv("users", "app,nobody", "type", "whitelist"), dockerfileInput("FROM x\nUSER daemon\n"),
			[]string{"User daemon found as effective user, which is not on the allowed list"}},
		{"whitelist listed", kv("users", "app,nobody", "type", "allowlist"), dockerfileInput("FROM x\nUSER app\n"), []string{}},
		{"guessed uses config user", kv("users", "root", "type", "blacklist"), historyInput("nginx", nil, "/bin/sh -c #(nop) USER root"), []string{}},
		{"guessed defaults to root", kv("users", "root", "type", "blacklist"), historyInput("", nil, "/bin/sh -c true"),
			[]string{"User root found as effective user, which is explicity not allowed list"}},
		{"no dockerfile skips", kv("users", "root", "type", "blacklist"), Input{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "dockerfile", "effective_user", tt.params, tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExposedPorts(t *testing.T) {
	df := dockerfileInput("FROM x\nEXPOSE 22 8080/tcp\nEXPOSE 9000-9010/udp $PORT\n")
	tests := []struct {
		name   string
		params []Param
		in     Input
		want   []string
	}{
		{"blacklist", kv("ports", "22,9005", "type", "blacklist"), df, []string{
			"Dockerfile exposes port (22) which is in policy file DENIEDPORTS list",
			"Dockerfile exposes port (9000-9010/udp) which is in policy file DENIEDPORTS list"}},
		{"blacklist not exposed", kv("ports", "23", "type", "blacklist"), df, []string{}},
		{"blacklist 0 is any", kv("ports", "0", "type", "blacklist"), df, []string{
			"Dockerfile exposes network ports but policy sets DENIEDPORTS=0: ['22', '8080/tcp', '9000-9010/udp']"}},
		{"blacklist 0 nothing exposed", kv("ports", "0", "type", "blacklist"), dockerfileInput("FROM x\n"), []string{}},
		{"whitelist", kv("ports", "8080", "type", "whitelist"), df, []string{
			"Dockerfile exposes port (22) which is not in policy file ALLOWEDPORTS list",
			"Dockerfile exposes port (9000-9010/udp) which is not in policy file ALLOWEDPORTS list"}},
		{"whitelist 0 allows any", kv("ports", "0", "type", "whitelist"), df, []string{}},
		{"guessed uses config ports", kv("ports", "22", "type", "blacklist"), historyInput("", []string{"22/tcp"}, "/bin/sh -c #(nop)  EXPOSE 80/tcp"),
			[]string{"Dockerfile exposes port (22/tcp) which is in policy file DENIEDPORTS list"}},
		{"guessed falls back to history", kv("ports", "80", "type", "blacklist"), historyInput("", nil, "EXPOSE map[80/tcp:{}]"),
			[]string{"Dockerfile exposes port (80/tcp) which is in policy file DENIEDPORTS list"}},
		{"actual_dockerfile_only skips guessed", kv("ports", "22", "type", "blacklist", "actual_dockerfile_only", "true"), historyInput("", []string{"22/tcp"}, "/bin/sh -c true"), []string{}},
		{"final stage only", kv("ports", "22", "type", "blacklist"), dockerfileInput("FROM x AS b\nEXPOSE 22\nFROM y\nEXPOSE 80\n"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "dockerfile", "exposed_ports", tt.params, tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoDockerfileProvided(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want int
	}{
		{"provided", dockerfileInput("FROM x\n"), 0},
		{"guessed is not provided", historyInput("", nil, "/bin/sh -c true"), 1},
		{"nothing", Input{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fire(t, "dockerfile", "no_dockerfile_provided", nil, tt.in); len(got) != tt.want {
				t.Errorf("findings = %q, want %d", messages(got), tt.want)
			}
		})
	}
}

func TestDockerfileMode(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   Input
		want string
	}{
		{"actual", dockerfileInput("FROM x"), DockerfileActual},
		{"guessed", historyInput("", nil, "/bin/sh -c true"), DockerfileGuessed},
		{"none", Input{}, DockerfileNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Evaluate(oneRuleBundle(Rule{Gate: "always", Trigger: "always"}), tt.in, now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.DockerfileMode != tt.want {
				t.Errorf("mode = %q, want %q", ev.DockerfileMode, tt.want)
			}
		})
	}
}
