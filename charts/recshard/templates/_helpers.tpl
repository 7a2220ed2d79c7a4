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
{{/* The served namespaces, comma-separated (watchNamespaces and the older watchNamespace); empty: all of them. */}}
{{- define "recshard.watchNamespaces" -}}
{{- $l := .Values.watchNamespaces | default list -}}
{{- if .Values.watchNamespace }}{{ $l = append $l .Values.watchNamespace }}{{ end -}}
{{- $l | uniq | join "," -}}
{{- end -}}
{{/* What the operator does to its models' children, in each served namespace (or in all of them). */}}
{{- define "recshard.modelRules" -}}
- apiGroups: [recshard.io]
  resources: [recmodels]
  verbs: [get, list, watch]
- apiGroups: [recshard.io]
  resources: [recmodels/status]
  verbs: [get, patch, update]
# read by label selector (the operator's managed-by label): readiness, addresses, what the kubelet says
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# no deployments/scale: the autoscaler patches the Deployment itself, which the admission policy checks
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
