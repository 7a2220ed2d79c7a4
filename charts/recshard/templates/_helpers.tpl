{{- define "recshard.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "recshard.serviceAccountName" -}}
{{- default (include "recshard.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
{{- define "recshard.selectorLabels" -}}
app.kubernetes.io/name: recshard-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{/* Kubernetes recommended labels, on every object the chart makes. */}}
{{- define "recshard.labels" -}}
{{ include "recshard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: recshard
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "recshard.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .appVersion) -}}
{{- end -}}
{{/* The RecModel pods' selector (the labels the operator puts on every pod it creates). */}}
{{- define "recshard.modelPodLabels" -}}
app.kubernetes.io/name: recshard-shard-server
app.kubernetes.io/managed-by: recshard-operator
{{- end -}}
