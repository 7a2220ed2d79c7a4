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
{{- define "recshard.labels" -}}
{{ include "recshard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: recshard
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
