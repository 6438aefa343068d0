{{- define "email-connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "email-connector.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "email-connector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "email-connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "email-connector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "email-connector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "email-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "email-connector.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "email-connector.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "email-connector.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "email-connector.hasSecret" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.create -}}true{{- end -}}
{{- end -}}

{{- define "email-connector.caBundleSource" -}}
{{- if or .Values.caBundle.existingConfigMap .Values.caBundle.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "email-connector.caBundlePath" -}}
/etc/email-connector/ca/{{ .Values.caBundle.key }}
{{- end -}}

{{/* The memory limit when none is given: a base plus each job's response budget a few times
over (see memorySizing in values.yaml). */}}
{{- define "email-connector.memoryLimit" -}}
{{- $perJob := mul (int64 .Values.worker.maxResponseBytes) (int64 .Values.memorySizing.budgetsPerJob) -}}
{{- $jobs := div (mul $perJob (int64 .Values.worker.maxJobsActive)) 1048576 -}}
{{- printf "%dMi" (add (int64 .Values.memorySizing.baseMi) $jobs) -}}
{{- end -}}

{{/* The size of /tmp when none is given: every job's document allowance plus a margin (see
tmp in values.yaml). */}}
{{- define "email-connector.tmpSizeLimit" -}}
{{- if .Values.tmp.sizeLimit -}}
{{- .Values.tmp.sizeLimit -}}
{{- else -}}
{{- $jobs := div (mul (int64 .Values.worker.maxDocumentBytes) (int64 .Values.worker.maxJobsActive)) 1048576 -}}
{{- printf "%dMi" (add 64 $jobs) -}}
{{- end -}}
{{- end -}}

{{- define "email-connector.resources" -}}
{{- $resources := deepCopy .Values.resources -}}
{{- $limits := default (dict) $resources.limits -}}
{{- if not $limits.memory -}}
{{- $_ := set $limits "memory" (include "email-connector.memoryLimit" .) -}}
{{- end -}}
{{- $_ := set $resources "limits" $limits -}}
{{- toYaml $resources -}}
{{- end -}}
