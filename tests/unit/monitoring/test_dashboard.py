"""The fleet dashboard: valid Grafana JSON whose every query is valid PromQL (promtool parses
each as a recording rule) and reads only metrics this collection produces or the exporters it
installs export, with the DCGM fields among those the role asks the DCGM exporter for."""
import json
import re

import yaml

from conftest import ROLE, promtool

DASHBOARD = ROLE / "files" / "grafana" / "llmfleet-fleet.json"
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
PROBE = (ROLE / "files" / "monitoring-probe").read_text()
MTAIL = (ROLE / "templates" / "llmfleet_edge.mtail.j2").read_text()
DRIFT = (ROLE.parents[1] / "playbooks" / "templates" / "drift_report.prom.j2").read_text()
KEYWORDS = {"sum", "by", "rate", "count", "or", "and", "on", "vector", "max", "avg", "histogram_quantile",
            "le", "host", "gpu", "status", "client", "state", "name", "job", "mode", "alertstate", "alertname",
            "drift_host", "bool", "service_instance", "finished_reason"}


def queries():
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_dashboard_is_grafana_json_with_a_host_variable():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "llmfleet-fleet" and dash["schemaVersion"] >= 36
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names == ["datasource", "host"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in dash["panels"]}
    for needed in ("GPU utilisation", "GPU memory in use", "GPU temperature", "Time to first byte (p50, p99)",
                   "Requests per second by status", "5xx share", "Output throughput", "Instances by state"):
        assert needed in titles


def test_every_query_is_promql(tmp_path):
    rules = [{"record": "llmfleet:dashboard:%d" % i,
              "expr": expr.replace("$__rate_interval", "5m").replace("$host", ".*")}
             for i, (title, expr) in enumerate(queries()) if title]
    assert len(rules) >= 25
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_metric_is_one_we_produce():
    dcgm = {f[0] for f in VARS["__monitoring_dcgm_fields"]}
    ours = set(re.findall(r"\bllmfleet_[a-z_]+", PROBE)) | set(re.findall(r"\bllmfleet_edge_[a-z_]+", MTAIL))
    ours |= set(re.findall(r"\bllmfleet_drift_[a-z_]+", DRIFT))
    assert "llmfleet_drift_host_changes" in ours
    histograms = {m + suffix for m in ours for suffix in ("_bucket", "_sum", "_count")}
    # The exporters' own, and TensorRT-LLM's (relayed by the probe with monitoring_model_metrics).
    exporters = ("node_", "nginx_", "trtllm_")
    for title, expr in queries():
        text = re.sub(r'\[[^\]]*\]', '', re.sub(r'"[^"]*"', '""', expr))
        for name in set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", text)) - KEYWORDS:
            if name in ("up", "ALERTS") or name.startswith(exporters) or re.fullmatch(r"[0-9a-z]", name):
                continue
            if name.startswith("DCGM_"):
                assert name in dcgm, "%s: %s is not among the DCGM exporter's fields" % (title, name)
            else:
                assert name in ours | histograms, "%s: %s is not a metric the collection produces" % (title, name)


def test_the_rules_read_only_fields_the_dcgm_exporter_collects(rendered):
    dcgm = {f[0] for f in VARS["__monitoring_dcgm_fields"]}
    rules = (rendered / "mon-1" / "llmfleet.rules.yml").read_text()
    used = set(re.findall(r"\bDCGM_FI_[A-Z_]+", rules))
    assert used and used <= dcgm
    csv = (rendered / "node-1" / "dcgm-counters.csv").read_text().splitlines()
    fields = [line.split(",")[0] for line in csv if line and not line.startswith("#")]
    assert set(fields) == dcgm
