#!/usr/bin/env python3
"""Runs every PromQL expression of the Grafana dashboards and the alert rules against a real
Prometheus, and fails when one does not parse or names a metric Prometheus has no series of.

Usage: promql.py PROMETHEUS_URL DASHBOARD.json... -- RULES.yml...

Grafana's variables are given the values a viewer would pick: `$job` every job, `$flow` the
bundled restaurant flow, `$__rate_interval` one minute. A metric is known when Prometheus holds
a series of that name (counters and histograms the server registers at zero count): a panel
over a metric that is not there shows "No data", and an alert over it can never fire.
"""

import json
import re
import sys
import urllib.parse
import urllib.request

VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "5m",
    "${job}": ".+",
    "$job": ".+",
    "${flow}": "restaurant",
    "$flow": "restaurant",
}
METRIC = re.compile(r"\b(switchboard_[a-z0-9_]+)\b")


def query(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        return json.load(err)


def dashboard_exprs(path):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    found = []

    def walk(panel):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((f"{path}: panel {panel.get('title')!r}", target["expr"]))
        for inner in panel.get("panels", []):
            walk(inner)

    for panel in dashboard.get("panels", []):
        walk(panel)
    for variable in dashboard.get("templating", {}).get("list", []):
        q = variable.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q or "")
        if m:
            found.append((f"{path}: variable {variable['name']!r}", m.group(1)))
    return found


def rule_exprs(path):
    # The rules file is YAML; its expressions are the `expr:` keys, on one line or as a block.
    found = []
    lines = open(path, encoding="utf-8").read().splitlines()
    name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*alert:\s*(\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                found.append((f"{path}: alert {name}", " ".join(block)))
                continue
            found.append((f"{path}: alert {name}", rest.strip("'\"")))
        i += 1
    return found


def main():
    base, args = sys.argv[1].rstrip("/"), sys.argv[2:]
    split = args.index("--")
    exprs = []
    for path in args[:split]:
        exprs += dashboard_exprs(path)
    for path in args[split + 1 :]:
        exprs += rule_exprs(path)
    if len(exprs) < 10:
        sys.exit(f"promql: only {len(exprs)} expressions found; the extraction is broken")
    names = set(query(base, "/api/v1/label/__name__/values")["data"])
    problems = []
    for where, expr in exprs:
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        answer = query(base, "/api/v1/query", query=expr)
        if answer.get("status") != "success":
            problems.append(f"{where}: {expr}\n    does not run: {answer.get('error')}")
            continue
        for metric in sorted(set(METRIC.findall(expr))):
            if metric not in names:
                problems.append(f"{where}: {expr}\n    names {metric}, which the server does not expose")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"promql: {len(problems)} of {len(exprs)} expressions are broken (above)")
    print(f"  -> {len(exprs)} expressions run, and every metric they name exists")


if __name__ == "__main__":
    main()
