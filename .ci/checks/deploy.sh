#!/usr/bin/env bash
# Validates the Kubernetes manifests offline against the published schemas
# (kubernetes-validate, strict: unknown fields are errors), and proves the check can fail.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "  -> installing kubernetes-validate"
  pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 2>/dev/null \
    || pip install --quiet --disable-pip-version-check kubernetes-validate
fi

manifests=(deploy/kubernetes/namespace.yaml deploy/kubernetes/deployment.yaml
  deploy/kubernetes/service.yaml deploy/kubernetes/pdb.yaml)
for version in 1.30.0 1.37.0; do
  kubernetes-validate --strict --quiet -k "$version" "${manifests[@]}"
done

# A negative control: a typo'd field must be refused, or this check checks nothing.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed 's/^  replicas: 3$/  replicass: 3/' deploy/kubernetes/deployment.yaml >"$work/typo.yaml"
if kubernetes-validate --strict --quiet "$work/typo.yaml" >/dev/null 2>&1; then
  echo "deploy: kubernetes-validate accepted a manifest with an unknown field" >&2
  exit 1
fi
echo "  -> manifests valid"
