package step

import "testing"

func TestFinalFrom(t *testing.T) {
	tests := map[string]string{
		"FROM debian:11\n": "debian:11",
		"FROM --platform=linux/amd64 debian:11 AS base\nRUN true\n":              "debian:11",
		"FROM golang:1.22 AS build\nFROM alpine:3.19\nCOPY --from=build /x /x\n": "alpine:3.19",
		"FROM debian:12 AS base\nFROM base AS run\nFROM run\n":                   "debian:12",
		"FROM golang:1.22 AS build\nFROM scratch\n":                              "",
		"ARG BASE=debian:11\nFROM ${BASE}\n":                                     "",
		"# no FROM\nRUN true\n":                                                  "",
		"":                                                                       "",
	}
	for df, want := range tests {
		if got := finalFrom(df); got != want {
			t.Errorf("finalFrom(%q) = %q, want %q", df, got, want)
		}
	}
}
