"""The host probe (roles/monitoring/files/monitoring-probe) against real HTTP servers on
loopback and a fake file system root: instance states, drain switch, driver versions; its output
is what promtool check metrics accepts, and it replaces the file whole."""
import http.client
import http.server
import importlib.machinery
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROLE, promtool

PROBE = ROLE / "files" / "monitoring-probe"


def load_probe():
    loader = importlib.machinery.SourceFileLoader("llmfleet_monitoring_probe", str(PROBE))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


probe = load_probe()


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        code = self.server.status
        self.send_response(code)
        if code == 503:
            self.send_header("x-trtllm-server-state", "starting")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    started = []

    def start(status):
        srv = http.server.HTTPServer(("127.0.0.1", 0), Health)
        srv.status = status
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return srv.server_address[1]
    yield start
    for srv in started:
        srv.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(root, path, text):
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = value
    return out


def test_states_drain_and_a_coherent_driver(servers, tmp_path):
    ready, starting, down = servers(200), servers(503), free_port()
    root = tmp_path / "root"
    write(root, "/sys/module/nvidia/version", "580.65.06\n")
    write(root, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06", "")
    write(root, "/var/lib/llmfleet/edge/drain", "")
    config = {"instances": [{"name": "a", "port": ready}, {"name": "b", "port": starting}, {"name": "c", "port": down}],
              "drain_file": "/var/lib/llmfleet/edge/drain",
              "dcgm_exporter": {"enabled": True, "reason": "running"}}
    text = probe.render(config, str(root), timeout=1.0)
    s = samples(text)
    assert s['llmfleet_inference_up{service_instance="a",port="%d"}' % ready] == "1"
    assert s['llmfleet_inference_up{service_instance="b",port="%d"}' % starting] == "0"
    assert s['llmfleet_inference_up{service_instance="c",port="%d"}' % down] == "0"
    assert s['llmfleet_inference_state{service_instance="b",port="%d",state="starting"}' % starting] == "1"
    assert s['llmfleet_inference_state{service_instance="c",port="%d",state="down"}' % down] == "1"
    assert s['llmfleet_inference_state{service_instance="c",port="%d",state="ready"}' % down] == "0"
    assert s["llmfleet_inference_instances"] == "3"
    assert s["llmfleet_edge_drained"] == "1"
    assert s["llmfleet_nvidia_driver_present"] == "1"
    assert s['llmfleet_nvidia_driver_info{kernel_module="580.65.06",library="580.65.06"}'] == "1"
    assert s["llmfleet_nvidia_driver_mismatch"] == "0"
    assert s['llmfleet_gpu_exporter_enabled{reason="running"}'] == "1"
    proc = promtool("check", "metrics", stdin=text)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_half_done_driver_update_is_a_mismatch(tmp_path):
    root = tmp_path / "root"
    # The module from /proc (no /sys/module), the new library on disk.
    write(root, "/proc/driver/nvidia/version",
          "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  Release Build  (dvs-builder@U16)\n")
    write(root, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06", "")
    s = samples(probe.render({}, str(root)))
    assert s['llmfleet_nvidia_driver_info{kernel_module="570.133.20",library="580.65.06"}'] == "1"
    assert s["llmfleet_nvidia_driver_mismatch"] == "1"
    # Library installed, no module loaded (a kernel update without its module): a mismatch too.
    root2 = tmp_path / "root2"
    write(root2, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06", "")
    assert samples(probe.render({}, str(root2)))["llmfleet_nvidia_driver_mismatch"] == "1"


def test_a_host_without_gpu_reports_no_driver_and_the_reason(tmp_path):
    config = {"dcgm_exporter": {"enabled": False, "reason": "no NVIDIA GPU"}, "drain_file": "/nowhere/drain"}
    text = probe.render(config, str(tmp_path))
    s = samples(text)
    assert s["llmfleet_nvidia_driver_present"] == "0" and s["llmfleet_nvidia_driver_mismatch"] == "0"
    assert not [k for k in s if k.startswith("llmfleet_nvidia_driver_info")]
    assert s['llmfleet_gpu_exporter_enabled{reason="no NVIDIA GPU"}'] == "0"
    assert s["llmfleet_inference_instances"] == "0" and s["llmfleet_edge_drained"] == "0"
    assert promtool("check", "metrics", stdin=text).returncode == 0


def test_main_reads_the_instances_file_and_replaces_the_output_whole(servers, tmp_path):
    port = servers(200)
    (tmp_path / "instances.json").write_text(json.dumps({"instances": [{"name": "x", "port": port}]}))
    (tmp_path / "probe.json").write_text(json.dumps({"instances_file": str(tmp_path / "instances.json")}))
    out = tmp_path / "textfile" / "llmfleet.prom"
    out.parent.mkdir()
    out.write_text("old\n")
    assert probe.main(["--config", str(tmp_path / "probe.json"), "--out", str(out), "--root", str(tmp_path)]) == 0
    assert samples(out.read_text())['llmfleet_inference_up{service_instance="x",port="%d"}' % port] == "1"
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"
    # Nothing else is left in the textfile directory (the collector reads every *.prom file).
    assert sorted(p.name for p in out.parent.iterdir()) == ["llmfleet.prom"]


def test_the_library_the_linker_finds_and_nvml_init_decide_on_the_host(monkeypatch):
    """On the host itself (root /) the library is the one libnvidia-ml.so.1 resolves to, wherever
    it lives, and nvmlInit's RM_VERSION_MISMATCH (18) is a mismatch even when the names agree."""
    monkeypatch.setattr(probe, "kernel_module_version", lambda root: "580.159.04")
    monkeypatch.setattr(probe, "library_version", lambda root: [])
    monkeypatch.setattr(probe, "nvml_load", lambda: ("580.159.04", 0))
    s = samples(probe.render({}, "/"))
    assert s['llmfleet_nvidia_driver_info{kernel_module="580.159.04",library="580.159.04"}'] == "1"
    assert s["llmfleet_nvml_init_result"] == "0" and s["llmfleet_nvidia_driver_mismatch"] == "0"
    monkeypatch.setattr(probe, "nvml_load", lambda: ("580.159.04", 18))
    s = samples(probe.render({}, "/"))
    assert s["llmfleet_nvml_init_result"] == "18" and s["llmfleet_nvidia_driver_mismatch"] == "1"


def test_nvml_load_asks_nvml_only_to_init_and_shut_down(monkeypatch):
    calls = []

    class FakeNvml:  # TEST DOUBLE of libnvidia-ml.so.1 (ctypes)
        def __getattr__(self, name):
            calls.append(name)
            return lambda *a: 0

    monkeypatch.setattr(probe.ctypes, "CDLL", lambda name: FakeNvml())
    version, rc = probe.nvml_load()
    assert rc == 0 and calls == ["nvmlInit_v2", "nvmlShutdown"]
    assert version is None  # this process has no libnvidia-ml mapped

    def missing(name):
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")
    monkeypatch.setattr(probe.ctypes, "CDLL", missing)
    assert probe.nvml_load() == (None, None)


DOUBLE = ROLE.parents[1] / "tests" / "fixtures" / "inference_double" / "server.py"


@pytest.fixture
def doubles():
    """Two instances of the inference server TEST DOUBLE with TensorRT-LLM's metrics route."""
    started = []

    def start():
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(DOUBLE), "--port", str(port), "--prometheus-metrics"])
        started.append(proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.05)
        raise AssertionError("the double did not listen")
    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def test_model_metrics_are_relayed_with_their_instance(doubles, tmp_path):
    a, b = doubles(), doubles()
    conn = http.client.HTTPConnection("127.0.0.1", a, timeout=5)
    for attempt in range(2):
        conn.request("POST", "/v1/completions", body=json.dumps({"prompt": "x"}),
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    conn.close()
    down = free_port()
    config = {"model_metrics": True,
              "instances": [{"name": "a", "port": a}, {"name": "b", "port": b}, {"name": "c", "port": down}]}
    text = probe.render(config, str(tmp_path))
    s = samples(text)
    assert s['llmfleet_inference_metrics_up{service_instance="a",port="%d"}' % a] == "1"
    assert s['llmfleet_inference_metrics_up{service_instance="c",port="%d"}' % down] == "0"
    model = 'model_name="test-double/deepseek-r1-distill"'
    assert s['trtllm_request_success_total{service_instance="a",%s,finished_reason="stop"}' % model] == "2.0"
    assert s['trtllm_request_success_total{service_instance="b",%s,finished_reason="stop"}' % model] == "0.0"
    assert s['trtllm_time_to_first_token_seconds_bucket{service_instance="a",%s,le="+Inf"}' % model] == "2.0"
    # One HELP and one TYPE per family, though two instances sent them.
    assert text.count("# TYPE trtllm_request_success_total counter") == 1
    assert text.count("# TYPE trtllm_time_to_first_token_seconds histogram") == 1
    proc = promtool("check", "metrics", stdin=text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Off by default: nothing is fetched.
    assert "trtllm_" not in probe.render({"instances": [{"name": "a", "port": a}]}, str(tmp_path))


def test_relay_drops_timestamps_and_keeps_families_whole():
    lines = probe.relay([
        ("x", "# HELP m_total Things.\n# TYPE m_total counter\nm_total{k=\"1\"} 3 1700000000000\n"
              "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n# EOF\n"),
        ("y", "# TYPE m_total counter\nm_total 4\nbad line here\n")])
    assert lines == ["# HELP m_total Things.", "# TYPE m_total counter",
                     'm_total{service_instance="x",k="1"} 3', 'm_total{service_instance="y"} 4',
                     "# TYPE h histogram", 'h_bucket{service_instance="x",le="1"} 1',
                     'h_bucket{service_instance="x",le="+Inf"} 2', 'h_sum{service_instance="x"} 0.5',
                     'h_count{service_instance="x"} 2']
