{{/*
Helpers shared by every template of the chart (and by templates added
later, such as an admission webhook): names, labels, the selector, the
Secret and the TLS Secret names.
*/}}

{{/* The chart's name, at most 63 characters. */}}
{{- define "buildgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, the prefix of every object. */}}
{{- define "buildgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "buildgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "buildgate.labels" -}}
helm.sh/chart: {{ include "buildgate.chart" . }}
{{ include "buildgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the gate's pods. */}}
{{- define "buildgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "buildgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Secret holding the sealing key, the admin token and the store URL. */}}
{{- define "buildgate.secretName" -}}
{{- .Values.existingSecret | default (include "buildgate.fullname" .) }}
{{- end }}

{{/* The Secret holding the gate's serving certificate (tls.crt, tls.key). */}}
{{- define "buildgate.tlsSecretName" -}}
{{- printf "%s-tls" (include "buildgate.fullname" .) }}
{{- end }}

{{/* The Service's DNS name inside the cluster. */}}
{{- define "buildgate.serviceHost" -}}
{{- printf "%s.%s.svc" (include "buildgate.fullname" .) .Release.Namespace }}
{{- end }}

{{/* The ServiceAccount of the pods. */}}
{{- define "buildgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "buildgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The gate's image reference. */}}
{{- define "buildgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* "true" when the gate stores in PostgreSQL (several replicas), else "". */}}
{{- define "buildgate.postgres" -}}
{{- if or .Values.store.url .Values.store.fromExistingSecret }}true{{ end }}
{{- end }}

{{/*
Checks the values; rendering fails with the value to set.
*/}}
{{- define "buildgate.validate" -}}
{{- if include "buildgate.postgres" . }}
{{- if not .Values.existingSecret }}
{{- $_ := required "secret.sealingKey is required with store.url (PostgreSQL): every replica must seal registry credentials with the same key (head -c 32 /dev/urandom | base64), or set existingSecret" .Values.secret.sealingKey }}
{{- end }}
{{- if and .Values.store.fromExistingSecret (not .Values.existingSecret) }}
{{- fail "store.fromExistingSecret needs existingSecret: the name of the Secret holding the store URL" }}
{{- end }}
{{- else if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount=%d needs store.url (PostgreSQL): the SQLite store serves one gate" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
