// Command baseline is the least a step binary could do: one HTTP request
// with net/http. BenchmarkStartupToFirstRequest compares gate-jenkins
// with it, so the figure means something on a busy machine too.
package main

import (
	"net/http"
	"os"
	"strings"
)

func main() {
	req, err := http.NewRequest(http.MethodPost, os.Getenv("GATE_URL")+"/v1/images", strings.NewReader(`{"ref":"registry.example/app:1"}`))
	if err != nil {
		os.Exit(2)
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("GATE_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		os.Exit(2)
	}
	resp.Body.Close()
}
