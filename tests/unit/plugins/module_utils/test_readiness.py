"""readiness.probe/wait with a scripted transport: every kind of answer maps to the right state."""
import json

import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import readiness

MODELS = (200, {}, json.dumps({"data": [{"id": "deepseek-ai/DeepSeek-R1"}]}))


def scripted(answers):
    """fetch() answering per path from `answers` {path: answer or [answers...]}; an answer is a
    (status, headers, text) tuple or an exception to raise."""
    calls = []

    def fetch(method, path, body):
        calls.append((method, path, body))
        answer = answers[path]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
    fetch.calls = calls
    return fetch


def test_refused_is_starting():
    look = readiness.probe(scripted({"/health": readiness.Unreachable("Connection refused")}))
    assert look["state"] == "starting" and look["status"] is None and "Connection refused" in look["reason"]


def test_503_starting_header_is_starting():
    look = readiness.probe(scripted({"/health": (503, {"x-trtllm-server-state": "starting"}, "")}))
    assert look["state"] == "starting" and look["status"] == 503 and look["server_state"] == "starting"
    assert look["reason"] == "/health answered 503 (starting)"


@pytest.mark.parametrize("status", [404, 500, 502])
def test_other_answers_are_not_ready(status):
    assert readiness.probe(scripted({"/health": (status, {}, "")}))["state"] == "starting"


def test_ready_reads_models_and_version():
    fetch = scripted({"/health": (200, {}, ""), "/v1/models": MODELS, "/version": (200, {}, '{"version": "1.2.1"}')})
    look = readiness.probe(fetch)
    assert look["state"] == "ready" and look["models"] == ["deepseek-ai/DeepSeek-R1"] and look["version"] == "1.2.1"


def test_missing_version_route_is_still_ready():
    fetch = scripted({"/health": (200, {}, ""), "/v1/models": MODELS, "/version": (404, {}, "")})
    look = readiness.probe(fetch)
    assert look["state"] == "ready" and look["version"] is None


def test_wrong_model_fails_at_once():
    fetch = scripted({"/health": (200, {}, ""), "/v1/models": MODELS})
    look = readiness.probe(fetch, model="deepseek-ai/DeepSeek-V3")
    assert look["state"] == "failed" and "serves deepseek-ai/DeepSeek-R1, not deepseek-ai/DeepSeek-V3" in look["reason"]


def test_deep_checks():
    base = {"/health": (200, {}, ""), "/v1/models": MODELS, "/version": (200, {}, "{}")}
    fetch = scripted(dict(base, **{"/health_generate": (503, {}, "")}))
    assert readiness.probe(fetch, deep="health_generate")["reason"] == "/health_generate answered 503"
    fetch = scripted(dict(base, **{"/v1/completions": (200, {}, "{}")}))
    assert readiness.probe(fetch, deep="completion")["state"] == "ready"
    method, path, body = [c for c in fetch.calls if c[1] == "/v1/completions"][0]
    assert method == "POST" and json.loads(body) == {"model": "deepseek-ai/DeepSeek-R1", "prompt": "ping", "max_tokens": 1}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_rides_through_starting_to_ready():
    clock = Clock()
    fetch = scripted({"/health": [readiness.Unreachable("refused"), (503, {}, ""), (200, {}, "")],
                      "/v1/models": MODELS, "/version": (200, {}, "{}")})
    result = readiness.wait(fetch, timeout=60, interval=5, clock=clock, sleep=clock.sleep)
    assert result["ready"] and result["probes"] == 3 and result["starting_seen"] and result["elapsed"] == 10


def test_wait_gives_up_at_the_deadline_with_the_last_reason():
    clock = Clock()
    fetch = scripted({"/health": (503, {"x-trtllm-server-state": "starting"}, "")})
    result = readiness.wait(fetch, timeout=7, interval=3, clock=clock, sleep=clock.sleep)
    assert not result["ready"] and result["elapsed"] == 7 and result["probes"] == 4
    assert result["reason"] == "/health answered 503 (starting)"


def test_wait_zero_timeout_probes_once():
    clock = Clock()
    result = readiness.wait(scripted({"/health": readiness.Unreachable("refused")}), 0, 2, clock=clock, sleep=clock.sleep)
    assert result["probes"] == 1 and not result["ready"]
