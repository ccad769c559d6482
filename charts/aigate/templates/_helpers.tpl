{{/* The chart's name, cut to 63 characters (a label value's limit). */}}
{{- define "aigate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: the release name, or <release>-aigate when the release is named otherwise. */}}
{{- define "aigate.fullname" -}}
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

{{- define "aigate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aigate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aigate
{{- end }}

{{- define "aigate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aigate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aigate.operatorSelectorLabels" -}}
{{ include "aigate.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "aigate.webhookSelectorLabels" -}}
{{ include "aigate.selectorLabels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* The webhook pods' own ServiceAccount: list and watch what decisions read, SubjectAccessReviews, nothing else. */}}
{{- define "aigate.webhookServiceAccountName" -}}
{{- printf "%s-webhook" (include "aigate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aigate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aigate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "aigate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "aigate.webhookService" -}}
{{- printf "%s-webhook" (include "aigate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aigate.webhookHost" -}}
{{- printf "%s.%s.svc" (include "aigate.webhookService" .) .Release.Namespace }}
{{- end }}

{{/* The Secret the serving certificate is read from: the user's, cert-manager's, or the operator's own store. */}}
{{- define "aigate.webhookTLSSecret" -}}
{{- if .Values.webhook.tls.existingSecret }}
{{- .Values.webhook.tls.existingSecret }}
{{- else }}
{{- printf "%s-webhook-tls" (include "aigate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Who issues the serving certificate: existingSecret, certManager, or the operator's rotator. */}}
{{- define "aigate.tlsMode" -}}
{{- if .Values.webhook.tls.existingSecret }}existingSecret
{{- else if .Values.webhook.certManager.enabled }}certManager
{{- else }}rotator
{{- end }}
{{- end }}

{{- define "aigate.signingSecret" -}}
{{- if .Values.signing.existingSecret }}
{{- .Values.signing.existingSecret }}
{{- else }}
{{- printf "%s-signing-key" (include "aigate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The namespaces no webhook sees: the cluster's own, the release's (a broken operator must not block its own repair),
the gate namespace, any listed in values, and (below, by label) any labelled aigate.dev/ignore.
*/}}
{{- define "aigate.namespaceSelector" -}}
{{- include "aigate.namespacesExcept" (list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace .Values.gates.namespace | concat .Values.webhook.excludeNamespaces) }}
{{- end }}

{{/* The AIWorkload webhooks' namespaces: the release namespace too, where `kubectl aigate check-install` (the
install-check hook) sends its dry-run AIWorkload. No AIWorkload lives there, and an admin's would be judged. */}}
{{- define "aigate.aiworkloadNamespaceSelector" -}}
{{- include "aigate.namespacesExcept" (list "kube-system" "kube-public" "kube-node-lease" .Values.gates.namespace | concat .Values.webhook.excludeNamespaces) }}
{{- end }}

{{- define "aigate.namespacesExcept" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml (. | uniq | sortAlpha) | nindent 6 }}
  - key: aigate.dev/ignore
    operator: DoesNotExist
{{- end }}

{{/* The webhook clientConfig for one webhook id (its path is its id). */}}
{{- define "aigate.clientConfig" -}}
service:
  name: {{ include "aigate.webhookService" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: /{{ .id }}
  port: 443
{{- if eq (include "aigate.tlsMode" .root) "existingSecret" }}
caBundle: {{ required "webhook.tls.caBundle is required with webhook.tls.existingSecret" .root.Values.webhook.tls.caBundle }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, for every aigate container. */}}
{{- define "aigate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "aigate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Small pods the chart runs once (helm test, pre-delete hook). */}}
{{- define "aigate.hookResources" -}}
requests:
  cpu: 10m
  memory: 64Mi
limits:
  memory: 128Mi
{{- end }}
