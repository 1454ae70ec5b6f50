# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of an OpenAI-compatible inference server (trtllm-serve), as data: one probe turns
an HTTP answer - or the lack of one - into a state, and wait() polls until ready, a hard failure
or the deadline. The transport is passed in (`fetch`), so the module uses Ansible's open_url
and the tests can use anything.

fetch(method, path, body) returns (status, headers, text) for any HTTP answer, or raises
Unreachable(reason) when there is none (refused, reset, timed out).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

STARTING = "starting"
READY = "ready"
FAILED = "failed"
DEEP_CHECKS = ("none", "health_generate", "completion")


class Unreachable(Exception):
    """No HTTP answer at all: connection refused, reset or timed out."""


def _json(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def probe(fetch, deep="none", model=None):
    """One look: returns {state, status, reason, server_state, models, version}.

    starting - refused, timed out, 503, or any answer but 200 from /health (servers answer 404 or
               500 while their routes come up); a deep check that is not 200 yet
    failed   - ready, but the model asked for is not the one served (waiting will not help)
    ready    - /health 200 (and the deep check 200, and the model listed when one is named)
    """
    look = {"state": STARTING, "status": None, "reason": "", "server_state": None, "models": None, "version": None}
    try:
        status, headers, text = fetch("GET", "/health", None)
    except Unreachable as exc:
        look["reason"] = "no answer from /health: %s" % exc
        return look
    look["status"] = status
    look["server_state"] = (headers or {}).get("x-trtllm-server-state")
    if status != 200:
        look["reason"] = "/health answered %s%s" % (status, " (%s)" % look["server_state"] if look["server_state"] else "")
        return look
    try:
        status, dummy, text = fetch("GET", "/v1/models", None)
    except Unreachable as exc:
        look["reason"] = "no answer from /v1/models: %s" % exc
        return look
    if status != 200:
        look["status"] = status
        look["reason"] = "/v1/models answered %s" % status
        return look
    listed = _json(text) or {}
    look["models"] = sorted(m.get("id") for m in listed.get("data", []) if isinstance(m, dict) and m.get("id"))
    if model and model not in look["models"]:
        look["state"] = FAILED
        look["reason"] = "the server serves %s, not %s" % (", ".join(look["models"]) or "no model", model)
        return look
    if deep == "health_generate":
        check = ("GET", "/health_generate", None)
    elif deep == "completion":
        check = ("POST", "/v1/completions", json.dumps({
            "model": model or (look["models"][0] if look["models"] else ""), "prompt": "ping", "max_tokens": 1}))
    else:
        check = None
    if check:
        try:
            status, dummy, text = fetch(*check)
        except Unreachable as exc:
            look["reason"] = "no answer from %s: %s" % (check[1], exc)
            return look
        if status != 200:
            look["status"] = status
            look["reason"] = "%s answered %s" % (check[1], status)
            return look
    try:
        status, dummy, text = fetch("GET", "/version", None)
        if status == 200:
            found = _json(text)
            look["version"] = found.get("version") if isinstance(found, dict) else None
    except Unreachable:
        pass
    look["state"] = READY
    look["status"] = 200
    return look


def wait(fetch, timeout, interval, deep="none", model=None, clock=time.monotonic, sleep=time.sleep):
    """Probe until ready or failed or `timeout` seconds have passed. Returns the last probe plus
    {ready, elapsed, probes, starting_seen}: elapsed is the time to ready when ready."""
    started = clock()
    probes = 0
    starting_seen = False
    while True:
        probes += 1
        look = probe(fetch, deep, model)
        elapsed = clock() - started
        if look["state"] != READY:
            starting_seen = starting_seen or look["state"] == STARTING
        if look["state"] in (READY, FAILED) or elapsed >= timeout:
            look.update({"ready": look["state"] == READY, "elapsed": round(elapsed, 3), "probes": probes,
                         "starting_seen": starting_seen})
            return look
        sleep(min(interval, max(0.0, timeout - elapsed)))
