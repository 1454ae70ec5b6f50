"""The alert rules and the scrape configuration as the role renders them: promtool accepts
both, every alert fires on the series that should fire it and on no other (alerts.test.yml,
promtool test rules), the thresholds are the variables, and the targets come from the inventory."""
import shutil

import yaml

from conftest import HERE, promtool, run_playbook

ALERTS = {"LlmfleetGpuUtilizationHigh", "LlmfleetGpuMemoryHigh", "LlmfleetGpuTemperatureHigh",
          "LlmfleetGpuThrottling", "LlmfleetDriverMismatch", "LlmfleetInferenceNotReady",
          "LlmfleetServiceUnitFailed", "LlmfleetLatencyHigh", "LlmfleetErrorRateHigh",
          "LlmfleetTargetDown", "LlmfleetDriftDetected", "LlmfleetDriftRunStale"}


def test_promtool_accepts_the_rules(rendered):
    proc = promtool("check", "rules", str(rendered / "mon-1" / "llmfleet.rules.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 12 rules found" in proc.stdout


def test_every_alert_has_a_fire_and_a_no_fire_case(rendered, tmp_path):
    rules = yaml.safe_load((rendered / "mon-1" / "llmfleet.rules.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert names == ALERTS
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in ("page", "ticket"), r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
    cases = yaml.safe_load((HERE / "alerts.test.yml").read_text())
    tested = [t for group in cases["tests"] for t in group["alert_rule_test"]]
    assert {t["alertname"] for t in tested} == ALERTS
    for name in ALERTS:
        # A case with an expected alert, and the series of that group that must not fire it
        # (promtool compares the whole list of alerts at that time).
        assert any(t["alertname"] == name and t["exp_alerts"] for t in tested), name


def test_promtool_test_rules(rendered, tmp_path):
    shutil.copy(rendered / "mon-1" / "llmfleet.rules.yml", tmp_path / "llmfleet.rules.yml")
    shutil.copy(HERE / "alerts.test.yml", tmp_path / "alerts.test.yml")
    proc = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_thresholds_are_the_variables(tmp_path):
    """With 75% and 2m the calm GPU (80%) fires too, and earlier; the defaults' case then fails."""
    proc, out = run_playbook(tmp_path, {"monitoring_alert_gpu_utilization_percent": 75,
                                        "monitoring_alert_gpu_utilization_for": "2m",
                                        "monitoring_alert_error_ratio": 0.001}, limit="mon-1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    rules = (out / "mon-1" / "llmfleet.rules.yml").read_text()
    assert "DCGM_FI_DEV_GPU_UTIL > 75" in rules and "> 0.001" in rules
    shutil.copy(out / "mon-1" / "llmfleet.rules.yml", tmp_path / "llmfleet.rules.yml")
    case = {"rule_files": ["llmfleet.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": 'DCGM_FI_DEV_GPU_UTIL{host="calm",gpu="0"}', "values": "80x10"},
            {"series": 'DCGM_FI_DEV_GPU_UTIL{host="idle",gpu="0"}', "values": "10x10"}],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "LlmfleetGpuUtilizationHigh", "exp_alerts": [{
                "exp_labels": {"severity": "ticket", "host": "calm", "gpu": "0"},
                "exp_annotations": {"summary": "GPU 0 on calm is 80% busy",
                                    "description": "Above 75% for 2m: the host is at capacity; add instances or hosts."}}]}]}]}
    (tmp_path / "variant.test.yml").write_text(yaml.safe_dump(case))
    proc = promtool("test", "rules", "variant.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The defaults' cases no longer hold (the calm GPU fires): the thresholds are really used.
    shutil.copy(HERE / "alerts.test.yml", tmp_path / "alerts.test.yml")
    proc = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert proc.returncode != 0 and "LlmfleetGpuUtilizationHigh" in proc.stdout + proc.stderr


def test_bad_thresholds_are_refused_before_anything(tmp_path):
    proc, out = run_playbook(tmp_path, {"monitoring_alert_gpu_memory_percent": 120,
                                        "monitoring_alert_latency_for": "five minutes",
                                        "monitoring_alert_error_ratio": 5}, limit="mon-1")
    assert proc.returncode != 0
    text = proc.stdout
    assert "monitoring_alert_gpu_memory_percent" in text and "monitoring_alert_latency_for" in text
    assert "monitoring_alert_error_ratio 5 is not a share above 0 and below 1" in text
    assert not (out / "mon-1").exists()


def test_scrape_targets_come_from_the_inventory(rendered, tmp_path):
    conf = yaml.safe_load((rendered / "mon-1" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: [(c["targets"][0], c["labels"]["host"]) for c in j["static_configs"]]
            for j in conf["scrape_configs"]}
    assert jobs["node"] == [("192.0.2.13:9100", "lab-1"), ("10.0.0.20:9100", "mon-1"),
                            ("10.0.0.11:9100", "node-1"), ("10.0.0.12:9100", "node-2")]
    # GPU metrics only where a GPU is required; the edge's exporters only where the edge runs.
    assert jobs["dcgm"] == [("10.0.0.11:9400", "node-1"), ("10.0.0.12:9400", "node-2")]
    assert jobs["nginx"] == [("192.0.2.13:9113", "lab-1"), ("10.0.0.11:9113", "node-1")]
    assert jobs["edge_log"] == [("192.0.2.13:3903", "lab-1"), ("10.0.0.11:3903", "node-1")]
    assert conf["rule_files"] == ["/etc/prometheus/llmfleet.rules.yml"]
    assert "alerting" not in conf
    # promtool accepts it (with the rules file where the configuration names it).
    text = (rendered / "mon-1" / "prometheus.yml").read_text().replace(
        "/etc/prometheus/llmfleet.rules.yml", str(rendered / "mon-1" / "llmfleet.rules.yml"))
    (tmp_path / "prometheus.yml").write_text(text)
    proc = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_only_monitoring_servers_get_a_server(rendered):
    assert (rendered / "mon-1" / "prometheus.yml").exists()
    assert not (rendered / "node-1" / "prometheus.yml").exists()


def test_alertmanagers_and_extra_jobs(tmp_path):
    proc, out = run_playbook(tmp_path, {
        "monitoring_prometheus_alertmanagers": ["10.0.0.30:9093"],
        "monitoring_prometheus_extra_scrape_configs": [
            {"job_name": "blackbox", "static_configs": [{"targets": ["10.0.0.40:9115"]}]}]}, limit="mon-1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    conf = yaml.safe_load((out / "mon-1" / "prometheus.yml").read_text())
    assert conf["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.0.0.30:9093"]
    assert conf["scrape_configs"][-1] == {"job_name": "blackbox", "static_configs": [{"targets": ["10.0.0.40:9115"]}]}
