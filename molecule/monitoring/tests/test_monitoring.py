"""Monitoring seen from outside: a real Prometheus on mon-server scrapes the node exporter, the
nginx exporter and mtail on mon-node through the firewall, which keeps them closed to everyone
else (the controller); the fleet's rules are loaded and an instance that does not answer fires
its alert while the one that serves does not; requests through the edge become metrics; the
DCGM exporter is installed and not started on a host without a GPU; and a bad value or a
configuration promtool refuses changes nothing."""
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse
import urllib.request
import http.client

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

CA = os.path.join(os.environ["LLMFLEET_CA_DIR"], "ca.crt")
NODE, SERVER = "10.98.50.11", "10.98.50.12"
PROM = "http://%s:9090" % SERVER
KEY = "alice-0123456789abcdef0123456789abcdef"
testinfra_hosts = ["mon-node"]


@pytest.fixture(scope="module")
def node():
    return scenario.node("mon-node")


@pytest.fixture(scope="module")
def server():
    return scenario.node("mon-server")


def prom(path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["data"]


def query(expr):
    return prom("/api/v1/query", query=expr)["result"]


def wait_for(what, check, timeout=120):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(3)
    pytest.fail("%s: not within %d s (last: %r)" % (what, timeout, last))


def fetch_from(host, url):
    """GET url from inside an instance (its own address on the instances' network)."""
    code = "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(%r, timeout=5).read().decode())" % url
    return host.check_output("python3 -c %s" % json.dumps(code))


def connect_from_here(port):
    with socket.socket() as s:
        s.settimeout(3)
        return s.connect_ex((NODE, port))


def playbook(*args):
    """(exit status, output) of the scenario's converge with more arguments."""
    run = scenario.playbook("converge.yml", *args, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    return run.returncode, scenario.uncolored(run.stdout + run.stderr)


def test_exporters_answer_the_monitoring_server(server):
    metrics = fetch_from(server, "http://%s:9100/metrics" % NODE)
    assert 'llmfleet_inference_up{port="8000",service_instance="double-8000"} 1' in metrics
    assert 'llmfleet_inference_up{port="8001",service_instance="double-8001"} 0' in metrics
    assert 'llmfleet_inference_state{port="8001",service_instance="double-8001",state="down"} 1' in metrics
    assert "llmfleet_edge_drained 0" in metrics and "llmfleet_nvidia_driver_present 0" in metrics
    assert 'node_systemd_unit_state{name="nginx.service",state="active",type="notify"} 1' in metrics \
        or 'node_systemd_unit_state{name="nginx.service",state="active",type="forking"} 1' in metrics
    nginx = fetch_from(server, "http://%s:9113/metrics" % NODE)
    assert "nginx_up 1" in nginx and "nginx_connections_accepted" in nginx
    mtail = fetch_from(server, "http://%s:3903/metrics" % NODE)
    # The edge's program is loaded (its counters appear with the first request: the test below).
    assert 'mtail_prog_loads_total{prog="llmfleet_edge.mtail"} 1' in mtail


@pytest.mark.parametrize("port", [9100, 9113, 3903])
def test_exporters_are_closed_to_everyone_else(port):
    # The controller is not a monitoring source: the firewall drops it (11: timed out).
    assert connect_from_here(port) == 11


def test_prometheus_scrapes_every_target_it_generated():
    def all_up():
        targets = prom("/api/v1/targets")["activeTargets"]
        jobs = sorted((t["labels"]["job"], t["labels"]["host"]) for t in targets)
        healthy = all(t["health"] == "up" for t in targets)
        return jobs if healthy else None
    jobs = wait_for("every target up", all_up)
    # No dcgm job: the hosts may run without a GPU (llmfleet_require_gpu false).
    assert jobs == [("edge_log", "mon-node"), ("nginx", "mon-node"), ("node", "mon-node"),
                    ("node", "mon-server"), ("prometheus", "mon-server")]


def test_the_fleet_rules_are_loaded():
    groups = prom("/api/v1/rules")["groups"]
    names = {g["name"]: [r["name"] for r in g["rules"]] for g in groups}
    assert sorted(names) == ["llmfleet-fleet", "llmfleet-gpu", "llmfleet-serving"]
    assert sum(len(v) for v in names.values()) == 12
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups


def test_the_instance_that_does_not_answer_fires_and_the_serving_one_does_not():
    def firing():
        alerts = prom("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "LlmfleetInferenceNotReady"
                and a["state"] == "firing"]
    alerts = wait_for("LlmfleetInferenceNotReady firing", firing)
    assert [(a["labels"]["host"], a["labels"]["service_instance"]) for a in alerts] == [("mon-node", "double-8001")]
    assert alerts[0]["labels"]["severity"] == "page"


def test_requests_through_the_edge_become_metrics():
    ctx = ssl.create_default_context(cafile=CA)
    for attempt in range(3):
        conn = http.client.HTTPSConnection(NODE, 443, context=ctx, timeout=15)
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer " + KEY})
        assert conn.getresponse().status == 200
        conn.close()
    conn = http.client.HTTPSConnection(NODE, 443, context=ctx, timeout=15)
    conn.request("GET", "/v1/models")
    assert conn.getresponse().status == 401
    conn.close()

    def counted():
        ok = query('sum(llmfleet_edge_requests_total{host="mon-node",route="/v1/models",client="alice",status="200"})')
        refused = query('sum(llmfleet_edge_requests_total{host="mon-node",route="/v1/models",status="401"})')
        return ok and refused and float(ok[0]["value"][1]) >= 3 and float(refused[0]["value"][1]) >= 1
    wait_for("the edge's requests in Prometheus", counted)
    header = query('sum(llmfleet_edge_upstream_header_seconds_count{host="mon-node",route="/v1/models"})')
    assert header and float(header[0]["value"][1]) >= 3


def test_the_model_servers_own_metrics_reach_prometheus_with_their_instance():
    ctx = ssl.create_default_context(cafile=CA)
    conn = http.client.HTTPSConnection(NODE, 443, context=ctx, timeout=15)
    conn.request("POST", "/v1/completions", body=json.dumps({"model": "m", "prompt": "hi", "max_tokens": 4}),
                 headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()

    def relayed():
        got = query('trtllm_request_success_total{host="mon-node",service_instance="double-8000"}')
        return got and float(got[0]["value"][1]) >= 1
    wait_for("trtllm_request_success_total of double-8000 in Prometheus", relayed)
    up = {r["metric"]["service_instance"]: r["value"][1] for r in query('llmfleet_inference_metrics_up{host="mon-node"}')}
    assert up == {"double-8000": "1", "double-8001": "0"}


def test_the_dcgm_exporter_is_installed_and_not_started_without_a_gpu(node, server):
    unit = node.file("/etc/systemd/system/llmfleet-dcgm-exporter.service")
    assert unit.exists and "--pull=never" in unit.content_string
    assert not node.service("llmfleet-dcgm-exporter.service").is_running
    metrics = fetch_from(server, "http://%s:9100/metrics" % NODE)
    assert 'llmfleet_gpu_exporter_enabled{reason="no NVIDIA GPU"} 0' in metrics
    # The run says so (and, run again, changes nothing).
    rc, out = playbook("--limit", "mon-node")
    assert rc == 0, out[-3000:]
    assert "monitoring: DCGM exporter skipped on mon-node: no NVIDIA GPU" in " ".join(out.split())
    assert re.search(r"mon-node\s+: ok=\d+\s+changed=0\s", out), out[-1500:]


def test_the_served_configuration_passes_promtool(server):
    out = server.run("promtool check config /etc/prometheus/prometheus.yml")
    assert out.rc == 0, out.stdout + out.stderr


def test_a_bad_threshold_is_refused_before_anything_changes(server):
    before = server.file("/etc/prometheus/llmfleet.rules.yml").sha256sum
    rc, out = playbook("--limit", "mon-server", "-e", "monitoring_alert_gpu_utilization_percent=150")
    assert rc != 0
    assert "not percentages above 0 and at most 100: monitoring_alert_gpu_utilization_percent=150" in out
    assert server.file("/etc/prometheus/llmfleet.rules.yml").sha256sum == before


def test_a_configuration_promtool_refuses_leaves_the_old_one_serving(server):
    before = server.file("/etc/prometheus/prometheus.yml").sha256sum
    # A second job named node: Prometheus would refuse to load it.
    rc, out = playbook("--limit", "mon-server", "-e", json.dumps({"monitoring_prometheus_extra_scrape_configs": [
        {"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:9100"]}]}]}))
    assert rc != 0
    assert "failed to validate" in out and 'found multiple scrape configs with job name "node"' in out
    assert server.file("/etc/prometheus/prometheus.yml").sha256sum == before
    assert prom("/api/v1/status/runtimeinfo")["reloadConfigSuccess"] is True
