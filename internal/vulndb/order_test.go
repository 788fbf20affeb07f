package vulndb

import (
	"reflect"
	"testing"

	"github.com/anchore/grype/grype/db/provider"
)

func TestOrderStates(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nvd moves first", []string{"debian", "github", "nvd", "kev"}, []string{"nvd", "debian", "github", "kev"}},
		{"eol moves last", []string{"eol", "debian", "nvd"}, []string{"nvd", "debian", "eol"}},
		{"others keep their order", []string{"kev", "github", "debian"}, []string{"kev", "github", "debian"}},
		{"nvd alone", []string{"nvd"}, []string{"nvd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in provider.States
			for _, n := range tt.in {
				in = append(in, provider.State{Provider: n})
			}
			if got := orderStates(in).Names(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("orderStates(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDistroName(t *testing.T) {
	tests := []struct {
		name                    string
		os, major, minor, label string
		want                    string
	}{
		{"major only", "debian", "12", "", "bookworm", "debian:12"},
		{"major and minor", "ubuntu", "22", "04", "jammy", "ubuntu:22.04"},
		{"label only", "alpine", "", "", "edge", "alpine:edge"},
		{"no name", "", "1", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := distroName(tt.os, tt.major, tt.minor, tt.label); got != tt.want {
				t.Errorf("distroName = %q, want %q", got, tt.want)
			}
		})
	}
}
