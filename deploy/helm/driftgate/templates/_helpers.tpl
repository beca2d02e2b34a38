{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "driftgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; components append "-gateway", "-vllm", ... so keep room. */}}
{{- define "driftgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "driftgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "driftgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftgate
{{- end -}}

{{/* Selector labels of one component: include "driftgate.selectorLabels" (list . "gateway") */}}
{{- define "driftgate.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "driftgate.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "driftgate.componentLabels" -}}
{{ include "driftgate.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "driftgate.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* Name of the Secret holding DRIFTGATE_STATE_URL. */}}
{{- define "driftgate.stateSecretName" -}}
{{- if .Values.state.existingSecret -}}
{{- .Values.state.existingSecret -}}
{{- else -}}
{{- printf "%s-state" (include "driftgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "driftgate.stateEnv" -}}
- name: DRIFTGATE_STATE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "driftgate.stateSecretName" . }}
      key: {{ .Values.state.secretKey }}
{{- end -}}

{{/* DRIFTGATE_GATEWAY_LIMITS_REDIS_URL: the external Redis's Secret, or the chart's Redis. */}}
{{- define "driftgate.limitsEnv" -}}
{{- $l := .Values.limits -}}
{{- if $l.existingSecret }}
- name: DRIFTGATE_GATEWAY_LIMITS_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $l.existingSecret }}
      key: {{ $l.secretKey }}
{{- else if $l.redis.enabled }}
- name: DRIFTGATE_GATEWAY_LIMITS_REDIS_URL
  value: "redis://{{ include "driftgate.fullname" . }}-redis.{{ .Release.Namespace }}.svc:{{ $l.redis.port }}/0"
{{- end }}
{{- end -}}

{{/* Name of the Secret holding the service credentials (ingest key, vLLM's API key). */}}
{{- define "driftgate.serviceKeysSecretName" -}}
{{- if .Values.serviceKeys.existingSecret -}}
{{- .Values.serviceKeys.existingSecret -}}
{{- else -}}
{{- printf "%s-service-keys" (include "driftgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* One env entry from the service-keys Secret: (dict "root" $ "env" NAME "key" KEY). */}}
{{- define "driftgate.serviceKeyEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "driftgate.serviceKeysSecretName" .root }}
      key: {{ .key }}
{{- end -}}

{{- /* The admin key: the operator's Secret (gateway.adminKeySecret), else the generated
     service-keys Secret's admin-key. The rollout controller needs it to swap versions. */}}
{{- define "driftgate.adminKeyEnv" -}}
{{- if .Values.gateway.adminKeySecret -}}
- name: DRIFTGATE_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.gateway.adminKeySecret }}
      key: {{ .Values.gateway.adminKeySecretKey }}
{{- else -}}
{{- include "driftgate.serviceKeyEnv" (dict "root" . "env" "DRIFTGATE_ADMIN_KEY" "key" "admin-key") -}}
{{- end -}}
{{- end -}}

{{- define "driftgate.adaptersClaim" -}}
{{- if .Values.adapters.existingClaim -}}
{{- .Values.adapters.existingClaim -}}
{{- else -}}
{{- printf "%s-adapters" (include "driftgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* One URL per vLLM replica (stable StatefulSet pod DNS names through the headless Service). */}}
{{- define "driftgate.upstreams" -}}
{{- $full := include "driftgate.fullname" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.engine.replicas) -}}
{{- $urls = append $urls (printf "http://%s-vllm-%d.%s-vllm-headless.%s.svc:%d" $full $i $full $.Release.Namespace (int $.Values.engine.port)) -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}

{{- define "driftgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "driftgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
