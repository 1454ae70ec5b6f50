"""inference_ready against the inference server TEST DOUBLE (tests/fixtures/inference_double), a
real HTTP server in a subprocess: refused, then starting (503), then ready; never ready; the
wrong model; check mode."""
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.llmfleet.deepseek.plugins.modules import inference_ready
from module_runner import run_module

DOUBLE = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "inference_double" / "server.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def double():
    procs = []

    def start(*args):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, str(DOUBLE), "--port", str(port)] + list(args)))
        return "http://127.0.0.1:%d" % port
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def run(monkeypatch, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    return run_module(monkeypatch, inference_ready, args, inference_ready.Ready)


def test_waits_through_refused_and_starting_until_ready(monkeypatch, double):
    url = double("--refuse-for-s", "1", "--starting-for-s", "1", "--model", "deepseek-ai/DeepSeek-R1")
    started = time.monotonic()
    done = run(monkeypatch, {"url": url, "timeout": 30, "interval": 0.2, "deep": "health_generate",
                             "model": "deepseek-ai/DeepSeek-R1"})
    assert not done.failed, done.result
    result = done.result
    assert result["ready"] and result["state"] == "ready" and result["starting_seen"]
    assert 1.5 < result["elapsed"] < time.monotonic() - started + 0.1
    assert result["version"] == "0.0.0-test-double" and result["models"] == ["deepseek-ai/DeepSeek-R1"]
    assert result["changed"] is False


def test_never_ready_fails_with_the_last_error(monkeypatch, double):
    url = double("--never-ready")
    time.sleep(0.3)
    done = run(monkeypatch, {"url": url, "timeout": 2, "interval": 0.3})
    assert done.failed
    assert "was not ready after" in done.result["msg"] and "/health answered 503 (starting)" in done.result["msg"]
    assert done.result["server_state"] == "starting" and done.result["elapsed"] >= 2


def test_nothing_listening_fails_saying_so(monkeypatch):
    done = run(monkeypatch, {"url": "http://127.0.0.1:%d" % free_port(), "timeout": 1, "interval": 0.2})
    assert done.failed and "no answer from /health" in done.result["msg"] and done.result["status"] is None


def test_the_wrong_model_fails_at_once(monkeypatch, double):
    url = double("--model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    time.sleep(0.3)
    done = run(monkeypatch, {"url": url, "timeout": 30, "interval": 0.2, "model": "deepseek-ai/DeepSeek-R1"})
    assert done.failed and done.result["elapsed"] < 5
    assert "serves deepseek-ai/DeepSeek-R1-Distill-Qwen-7B, not deepseek-ai/DeepSeek-R1" in done.result["msg"]


def test_completion_deep_check(monkeypatch, double):
    url = double()
    time.sleep(0.3)
    done = run(monkeypatch, {"url": url, "timeout": 10, "interval": 0.2, "deep": "completion"})
    assert not done.failed and done.result["ready"]


def test_check_mode_probes_once_and_does_not_fail(monkeypatch, double):
    url = double("--never-ready")
    time.sleep(0.3)
    done = run(monkeypatch, {"url": url, "timeout": 600}, check_mode=True)
    assert not done.failed and not done.result["ready"] and done.result["probes"] == 1
    assert done.result["msg"].startswith("one probe (check mode), not ready")


def test_bad_timing_options_are_refused(monkeypatch):
    done = run(monkeypatch, {"url": "http://127.0.0.1:1", "interval": 0})
    assert done.failed and "interval" in done.result["msg"]
