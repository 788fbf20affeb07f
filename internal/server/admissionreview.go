package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/admission"
)

// MaxAdmissionReview bounds an AdmissionReview body: kube-apiserver's
// limit on an object is 3 MiB, and a review may carry the old object too.
const MaxAdmissionReview = 7 << 20

// judgedKinds are the kinds whose containers are judged.
var judgedKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// review answers an admission.k8s.io/v1 AdmissionReview. Whatever the
// input, the answer is 200 with a well-formed AdmissionReview: what cannot
// be read is judged by the matching rule's on_error.
func (h admissionHandlers) review(c echo.Context) error {
	req := admission.Request{Cluster: c.QueryParam("cluster")}
	uid := ""
	var in admissionv1.AdmissionReview
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxAdmissionReview+1))
	switch {
	case err != nil:
		req.Problem = fmt.Sprintf("reading the AdmissionReview: %v", err)
	case len(body) > MaxAdmissionReview:
		req.Problem = fmt.Sprintf("the AdmissionReview is over the limit of %d bytes", MaxAdmissionReview)
	default:
		if err := json.Unmarshal(body, &in); err != nil {
			req.Problem = "the AdmissionReview is not valid JSON: " + jsonProblem(err)
		} else if in.Request == nil {
			req.Problem = "the AdmissionReview has no request"
		} else if in.APIVersion != "" && in.APIVersion != admissionv1.SchemeGroupVersion.String() {
			req.Problem = fmt.Sprintf("the AdmissionReview's apiVersion %q is not %s", in.APIVersion, admissionv1.SchemeGroupVersion)
		}
	}
	if in.Request != nil {
		r := in.Request
		uid = string(r.UID)
		req.UID, req.Namespace, req.Kind, req.Name, req.Operation, req.User =
			uid, r.Namespace, r.Kind.Kind, r.Name, string(r.Operation), r.UserInfo.Username
		req.DryRun = r.DryRun != nil && *r.DryRun
		if req.Problem == "" {
			req.Problem = readObject(r, &req)
		}
	}
	if req.Problem == "" && (req.Operation == string(admissionv1.Delete) || req.Operation == string(admissionv1.Connect)) {
		return c.JSON(http.StatusOK, reviewAnswer(uid, true, "", nil))
	}
	res := h.a.Review(c.Request().Context(), req)
	return c.JSON(http.StatusOK, reviewAnswer(uid, res.Allowed, res.Message, res.Warnings))
}

func reviewAnswer(uid string, allowed bool, msg string, warnings []string) admissionv1.AdmissionReview {
	resp := &admissionv1.AdmissionResponse{UID: k8stypes.UID(uid), Allowed: allowed, Warnings: warnings}
	if !allowed {
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg}
	} else if msg != "" {
		resp.Result = &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusOK, Message: msg}
	}
	return admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be a %s, not a %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// readObject fills req from the review's object: a Namespace's labels, or
// every container of a Pod or a workload's pod template. It returns the
// problem when there is one.
func readObject(r *admissionv1.AdmissionRequest, req *admission.Request) string {
	kind := r.Kind.Kind
	if r.Operation == admissionv1.Delete || r.Operation == admissionv1.Connect {
		return ""
	}
	if len(r.Object.Raw) == 0 {
		return fmt.Sprintf("the AdmissionReview of %s %q has no object", kind, r.Name)
	}
	var spec *corev1.PodSpec
	var name string
	var err error
	switch kind {
	case admission.KindNamespace:
		var ns corev1.Namespace
		if err = json.Unmarshal(r.Object.Raw, &ns); err == nil {
			req.Name, req.Labels = ns.Name, ns.Labels
			return ""
		}
	case "Pod":
		var o corev1.Pod
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec
	case "Deployment":
		var o appsv1.Deployment
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.Template.Spec
	case "StatefulSet":
		var o appsv1.StatefulSet
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.Template.Spec
	case "DaemonSet":
		var o appsv1.DaemonSet
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.Template.Spec
	case "ReplicaSet":
		var o appsv1.ReplicaSet
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.Template.Spec
	case "Job":
		var o batchv1.Job
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.Template.Spec
	case "CronJob":
		var o batchv1.CronJob
		err = json.Unmarshal(r.Object.Raw, &o)
		name, spec = o.Name, &o.Spec.JobTemplate.Spec.Template.Spec
	default:
		return fmt.Sprintf("kind %q is not one the gate judges (%s, or Namespace)", kind, strings.Join(judgedKinds, ", "))
	}
	if err != nil {
		return fmt.Sprintf("the %s object is not valid: %s", kind, jsonProblem(err))
	}
	if req.Name == "" {
		req.Name = name
	}
	for _, c := range spec.InitContainers {
		req.Containers = append(req.Containers, admission.Container{Name: c.Name, Kind: buildgate.ContainerInit, Image: c.Image})
	}
	for _, c := range spec.Containers {
		req.Containers = append(req.Containers, admission.Container{Name: c.Name, Kind: buildgate.ContainerRegular, Image: c.Image})
	}
	for _, c := range spec.EphemeralContainers {
		req.Containers = append(req.Containers, admission.Container{Name: c.Name, Kind: buildgate.ContainerEphemeral, Image: c.Image})
	}
	if len(req.Containers) == 0 {
		return fmt.Sprintf("%s %q has no containers", kind, req.Name)
	}
	for _, c := range req.Containers {
		if strings.TrimSpace(c.Image) == "" {
			return fmt.Sprintf("%s container %q of %s %q has no image", c.Kind, c.Name, kind, req.Name)
		}
	}
	return ""
}
