#!/usr/bin/env bash
# Checks helm/oz-bridge with a real Helm: lint --strict, then the default values and ci/ha-values.yaml
# rendered and validated against Kubernetes 1.29 and 1.33 (strict: unknown fields are errors) and the
# prometheus-operator CRDs; and the schema must refuse several replicas on SQLite.
#   scripts/check-chart.sh            (fetches its tools with scripts/fetch-tools.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHART=$ROOT/helm/oz-bridge
BIN=$("$ROOT/scripts/fetch-tools.sh" | tail -n1)
TOOLS=$(dirname "$BIN")
KUBERNETES_VERSIONS=(1.29.0 1.33.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$BIN/helm" lint --strict "$CHART"
"$BIN/helm" lint --strict "$CHART" --values "$CHART/ci/ha-values.yaml"

for name in default ha; do
  values=()
  if [ "$name" = ha ]; then values=(--values "$CHART/ci/ha-values.yaml"); fi
  "$BIN/helm" template oz-bridge "$CHART" --namespace oz "${values[@]}" >"$work/$name.yaml"
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    echo "check-chart: $name values against Kubernetes $version"
    "$BIN/kubernetes-validate" --strict --quiet --no-warn --kubernetes-version "$version" "$work/$name.yaml"
  done
  "$BIN/tools-python" -c 'import json, sys, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)' \
    <"$work/$name.yaml" >"$work/$name.json"
  node "$ROOT/scripts/validate-monitoring.mjs" "$TOOLS" <"$work/$name.json"
done

if "$BIN/helm" template oz-bridge "$CHART" --set replicaCount=3 >"$work/refused.txt" 2>&1; then
  echo "check-chart: the chart rendered 3 replicas on SQLite; values.schema.json must refuse them" >&2
  exit 1
fi
grep -q "OZ_BRIDGE_DATABASE_URL" "$work/refused.txt"
echo "check-chart: 3 replicas on SQLite refused: $(grep OZ_BRIDGE_DATABASE_URL "$work/refused.txt" | head -n1)"
echo "check-chart: OK"
