{{/* A hook object's annotations: its phase(s), weight and delete policy (kept only while it runs or fails). */}}
{{- define "aigate.hookAnnotations" -}}
helm.sh/hook: {{ .hook }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* A hook Job's ServiceAccount and what it may do, for the hook's lifetime only: `clusterRules` (YAML, a list of
rules) in a ClusterRole, `namespaceRules` in a Role of the release namespace, each bound to the ServiceAccount. */}}
{{- define "aigate.hookRBAC" -}}
{{- $root := .root -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "aigate.labels" $root | nindent 4 }}
  annotations:
    {{- include "aigate.hookAnnotations" (dict "hook" .hook "weight" "-10") | nindent 4 }}
{{- range $scope := list "Cluster" "" }}
{{- $rules := ternary $.clusterRules $.namespaceRules (eq $scope "Cluster") }}
{{- if $rules }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $scope }}Role
metadata:
  name: {{ $.name }}
  {{- if not $scope }}
  namespace: {{ $root.Release.Namespace }}
  {{- end }}
  labels:
    {{- include "aigate.labels" $root | nindent 4 }}
  annotations:
    {{- include "aigate.hookAnnotations" (dict "hook" $.hook "weight" "-10") | nindent 4 }}
rules:
  {{- $rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $scope }}RoleBinding
metadata:
  name: {{ $.name }}
  {{- if not $scope }}
  namespace: {{ $root.Release.Namespace }}
  {{- end }}
  labels:
    {{- include "aigate.labels" $root | nindent 4 }}
  annotations:
    {{- include "aigate.hookAnnotations" (dict "hook" $.hook "weight" "-10") | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ $scope }}Role
  name: {{ $.name }}
subjects:
  - kind: ServiceAccount
    name: {{ $.name }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end }}
{{- end }}
