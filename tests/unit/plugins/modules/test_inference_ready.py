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


# --------------------------------------------------------------------------------------------- bad input
# Options no probe could ever succeed with fail at once - before any probe, in check mode too -
# naming the option, the value and what is accepted (issue 24, class 3).


def run_unprobed(monkeypatch, args, check_mode=False):
    """Run the module with a transport that records calls; returns (Exited, calls, warnings)."""
    calls, warnings = [], []

    def fetch(self, method, path, body):
        calls.append(path)
        raise inference_ready.readiness.Unreachable("nothing listens (test)")

    monkeypatch.setattr(inference_ready.Ready, "fetch", fetch)
    monkeypatch.setattr(inference_ready.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    started = time.monotonic()
    done = run(monkeypatch, dict({"timeout": 600, "interval": 0.01}, **args), check_mode=check_mode)
    assert time.monotonic() - started < 2
    return done, calls, warnings


@pytest.mark.parametrize("url, why", [
    ("ftp://127.0.0.1:8000", "has the scheme ftp"),
    ("file:///etc/passwd", "has the scheme file"),
    ("127.0.0.1:8000", "does not start with http:// or https://"),
    ("localhost:8000", "does not start with http:// or https://"),
    ("//127.0.0.1:8000", "does not start with http:// or https://"),
    ("http:/127.0.0.1:8000", "does not start with http:// or https://"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("http://127.0.0.1:99999", "has the port '99999', which is not a number from 1 to 65535"),
    ("http://127.0.0.1:0", "has the port '0'"),
    ("http://127.0.0.1:-1", "has the port '-1'"),
    ("http://127.0.0.1:8o00", "has the port '8o00'"),
    ("http://127.0.0.1:", "has an empty port"),
    ("http://:8000", "has no host"),
    ("http:///v1", "has no host"),
    ("https://", "has no host"),
    ("http://127.0.0.1:8000/\n", "holds a space or control character ('\\n' at position 22)"),
    ("http://127.0.0.1 :8000", "holds a space or control character (' ' at position 16)"),
    ("http://127.0.0.1:8000\x00", "holds a space or control character"),
    ("http://[::1:8000", "cannot be parsed"),
    ("http://[not-v6]:8000", "cannot be parsed"),
    ("http://256.0.0.1:8000", "not a valid IPv4 address"),
    ("http://exa$mple.internal", "is not a host name"),
    ("http://a..b:8000", "not a valid host name"),
    ("http://127.0.0.1:8000/?probe=1", "has a ?query or #fragment"),
    ("http://127.0.0.1:8000#x", "has a ?query or #fragment"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_url_no_probe_could_reach_fails_at_once_naming_it(monkeypatch, url, why, check_mode):
    done, calls, dummy = run_unprobed(monkeypatch, {"url": url}, check_mode=check_mode)
    assert done.failed and calls == []
    msg = done.result["msg"]
    assert msg.startswith("inference_ready cannot run with these options, nothing was probed: url %r cannot be probed: it " % url)
    assert why in msg, msg
    assert msg.endswith("give an http:// or https:// base URL: a host name or IP address, an optional port 1-65535 and "
                        "an optional path, without spaces, query or fragment, for example http://127.0.0.1:8000")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000", "HTTPS://Edge.Example.Internal/llm/", "http://[::1]:8000", "http://[fe80::1%25eth0]:80",
    "http://trtllm_0.internal:8000", "http://user:secret@127.0.0.1:8000/", "http://bücher.example:65535",
])
def test_a_url_that_can_be_probed_is_probed(monkeypatch, url):
    done, calls, dummy = run_unprobed(monkeypatch, {"url": url, "wait": False})
    assert not done.failed, done.result
    assert calls == ["/health"] and done.result["msg"].startswith("one probe, not ready: no answer from /health")


@pytest.mark.parametrize("args, expected", [
    ({"timeout": 0}, "timeout must be a whole number of seconds above 0 and at most 31536000 (a year), got 0 "
                     "(to probe once without waiting, use wait: false)"),
    ({"timeout": -5}, "timeout must be a whole number of seconds above 0 and at most 31536000 (a year), got -5"),
    ({"timeout": 10 ** 12}, "timeout must be a whole number of seconds above 0 and at most 31536000 (a year), got 1000000000000"),
    ({"interval": 0}, "interval must be a number of seconds above 0 and at most 31536000 (a year), got 0.0"),
    ({"interval": -0.5}, "interval must be a number of seconds above 0 and at most 31536000 (a year), got -0.5"),
    ({"interval": "nan"}, "interval must be a number of seconds above 0 and at most 31536000 (a year), got nan"),
    ({"interval": "inf"}, "interval must be a number of seconds above 0 and at most 31536000 (a year), got inf"),
    ({"request_timeout": 0}, "request_timeout must be a whole number of seconds above 0 and at most 31536000 (a year), got 0"),
    ({"request_timeout": 10 ** 13}, "request_timeout must be a whole number of seconds above 0 and at most 31536000 (a year)"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_timing_option_that_is_not_a_positive_number_fails_at_once(monkeypatch, args, expected, check_mode):
    done, calls, dummy = run_unprobed(monkeypatch, dict({"url": "http://127.0.0.1:8000"}, **args), check_mode=check_mode)
    assert done.failed and calls == [] and expected in done.result["msg"], done.result["msg"]


def test_every_bad_option_is_named_in_one_message(monkeypatch):
    done, calls, dummy = run_unprobed(monkeypatch, {"url": "ftp://h", "timeout": -1, "interval": 0, "request_timeout": 0})
    msg = done.result["msg"]
    assert done.failed and calls == []
    assert [word in msg for word in ("url 'ftp://h'", "timeout must", "interval must", "request_timeout must")] == [True] * 4


@pytest.mark.parametrize("key, position", [
    ("abc\ndef", 3), ("abc\r\nX-Evil: 1", 3), (" leading", 0), ("trailing ", 8), ("in side", 2), ("caf\u00e9", 3),
    ("tab\there", 3), ("nul\x00", 3),
])
def test_an_api_key_no_header_can_carry_fails_without_showing_it(monkeypatch, key, position):
    done, calls, dummy = run_unprobed(monkeypatch, {"url": "http://127.0.0.1:8000", "api_key": key}, check_mode=True)
    assert done.failed and calls == []
    assert done.result["msg"].endswith(
        "api_key cannot be sent as an HTTP header: it holds a space, control or non-ASCII character at position %d "
        "(the value is not shown); a bearer token is printable ASCII without spaces" % position)
    assert key not in done.result["msg"]


@pytest.mark.parametrize("model", [" deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1 ", "deepseek\n", "deep\tseek\x7f"])
def test_a_model_name_that_can_never_match_fails_at_once(monkeypatch, model):
    done, calls, dummy = run_unprobed(monkeypatch, {"url": "http://127.0.0.1:8000", "model": model})
    assert done.failed and calls == []
    assert ("model %r can never match a served model: it starts or ends with whitespace or holds a control character"
            % model) in done.result["msg"]


def test_a_ca_path_that_is_no_ca_bundle_fails_at_once(monkeypatch, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [(tmp_path / "missing.pem", "does not exist on the host"),
             (tmp_path, "is a directory, not a file of certificates"),
             (junk, "cannot be loaded as CA certificates (")]
    for path, why in cases:
        done, calls, dummy = run_unprobed(monkeypatch, {"url": "https://127.0.0.1:8443", "ca_path": str(path)}, check_mode=True)
        assert done.failed and calls == []
        assert "ca_path %s %s" % (path, why) in done.result["msg"], done.result["msg"]
        assert done.result["msg"].endswith("give a file of PEM CA certificates the host can read")


def test_suspicious_but_legal_options_warn(monkeypatch):
    ca = __import__("ssl").get_default_verify_paths().cafile
    if not ca:
        pytest.skip("no system CA bundle here")
    done, calls, warnings = run_unprobed(monkeypatch, {"url": "http://127.0.0.1:8000", "ca_path": ca, "wait": False})
    assert not done.failed and warnings == [
        "ca_path %s is given but url http://127.0.0.1:8000 is plain http: no certificate is checked" % ca]
    done, calls, warnings = run_unprobed(monkeypatch, {"url": "http://127.0.0.1:8000", "timeout": 1, "interval": 30})
    assert done.failed and "was not ready after" in done.result["msg"]
    assert warnings == ["interval 30.0 is longer than timeout 1: the server is probed at the start and once more at the deadline"]
