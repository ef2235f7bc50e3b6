{{/* Names, labels and the decisions every template shares. */}}

{{- define "oz-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oz-bridge.fullname" -}}
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

{{- define "oz-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oz-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oz-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "oz-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ include "oz-bridge.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "oz-bridge.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "oz-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oz-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oz-bridge.secretName" -}}
{{- .Values.existingSecret | default (include "oz-bridge.fullname" .) }}
{{- end }}

{{/* The secrets the chart renders: the non-empty entries of .Values.secrets. */}}
{{- define "oz-bridge.renderedSecrets" -}}
{{- $out := dict }}
{{- range $name, $value := .Values.secrets }}
{{- if $value }}{{ $_ := set $out $name (toString $value) }}{{ end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* "postgresql" or "sqlite": what the bridge's database is, from the URL or database.engine. */}}
{{- define "oz-bridge.databaseEngine" -}}
{{- $url := .Values.secrets.OZ_BRIDGE_DATABASE_URL | default "" | toString }}
{{- if .Values.database.engine }}
{{- .Values.database.engine }}
{{- else if regexMatch "^postgresql(\\+asyncpg)?://" $url }}
{{- "postgresql" }}
{{- else }}
{{- "sqlite" }}
{{- end }}
{{- end }}

{{- define "oz-bridge.sqlite" -}}
{{- if eq (include "oz-bridge.databaseEngine" .) "sqlite" }}true{{ end }}
{{- end }}

{{/* The data volume is a claim on SQLite with persistence on; an emptyDir otherwise. */}}
{{- define "oz-bridge.claimName" -}}
{{- if and (include "oz-bridge.sqlite" .) .Values.persistence.enabled }}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "oz-bridge.fullname" .)) }}
{{- end }}
{{- end }}

{{/*
Refusals that the schema cannot express, each with the fix in words. Called from the Deployment,
so `helm template` and `helm install` fail before anything is applied.
*/}}
{{- define "oz-bridge.validate" -}}
{{- $engine := include "oz-bridge.databaseEngine" . }}
{{- $url := .Values.secrets.OZ_BRIDGE_DATABASE_URL | default "" | toString }}
{{- if and (gt (int .Values.replicaCount) 1) (ne $engine "postgresql") }}
{{- fail (printf "replicaCount is %d but the database is SQLite, which takes exactly one replica: set secrets.OZ_BRIDGE_DATABASE_URL to a postgresql:// URL (or database.engine: postgresql with existingSecret), or replicaCount: 1" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq $engine "postgresql") (not .Values.existingSecret) (not (regexMatch "^postgresql(\\+asyncpg)?://" $url)) }}
{{- fail "database.engine is postgresql but secrets.OZ_BRIDGE_DATABASE_URL is not a postgresql:// URL" }}
{{- end }}
{{- if and .Values.existingSecret (ne (include "oz-bridge.renderedSecrets" .) "{}") }}
{{- fail "existingSecret is set, so the chart creates no Secret: leave every value under secrets empty and put them in that Secret" }}
{{- end }}
{{- if not .Values.existingSecret }}
{{- $provided := merge (dict) (include "oz-bridge.renderedSecrets" . | fromJson) .Values.env }}
{{- $text := toYaml .Values.config | replace "$$" "" }}
{{- range $ref := regexFindAll "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" $text -1 | uniq }}
{{- $name := trimSuffix "}" (trimPrefix "${" $ref) }}
{{- if not (hasKey $provided $name) }}
{{- fail (printf "config uses ${%s} but neither secrets.%s nor env.%s is set (a missing variable stops the bridge at start)" $name $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
