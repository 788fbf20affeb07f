package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/server"
)

// BenchmarkAdmissionReview sends 1,000 admission reviews of a known image
// (tag resolved through the 30 s cache, verdict stored) to a real gate
// over HTTP, one after another, and reports their p50 and p99.
//
//	go test ./gate -run '^$' -bench BenchmarkAdmissionReview -benchtime 1x
func BenchmarkAdmissionReview(b *testing.B) {
	g := startGate(b, nil)
	host := testRegistry(b)
	ref := host + "/team/app:1.2"
	push(b, ref, sharedImage(b, "bullseye-dpkgonly"))
	if img := g.submitAndWait(b, ref); img.Status != api.StatusAnalyzed {
		b.Fatalf("image = %s %s", img.Status, img.Error)
	}
	ctx := context.Background()
	const token = "bg_bench_admission_token"
	if err := g.Store.CreateToken(ctx, buildgate.Token{ID: "kube", Name: "kube-apiserver", Role: buildgate.RoleAdmission, CreatedAt: time.Now().UTC()}, server.HashToken(token)); err != nil {
		b.Fatal(err)
	}
	if _, err := g.Admission.CreateRule(ctx, buildgate.AdmissionRule{Name: "prod", Namespaces: []string{"prod-*"}}); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	send := func(i int) time.Duration {
		body := podReview(fmt.Sprintf("bench-%d", i), "prod-web", false, ref)
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/admission/review", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != 200 || !bytes.Contains(buf.Bytes(), []byte(`"allowed":false`)) {
			b.Fatalf("review %d = %d %s", i, resp.StatusCode, buf.Bytes())
		}
		return took
	}
	send(-1) // the first review stores the verdict for the tag
	const reviews = 1000
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 0, reviews)
		for i := range reviews {
			lat = append(lat, send(i))
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[reviews/2]), "p50-ms")
		b.ReportMetric(ms(lat[reviews*99/100]), "p99-ms")
	}
}
