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

import ipaddress
import json
import re
import time
import unicodedata
from urllib.parse import urlsplit

STARTING = "starting"
READY = "ready"
FAILED = "failed"
DEEP_CHECKS = ("none", "health_generate", "completion")
URL_SCHEMES = ("http", "https")
URL_ACCEPTED = ("give an http:// or https:// base URL: a host name or IP address, an optional port 1-65535 and an "
                "optional path, without spaces, query or fragment, for example http://127.0.0.1:8000")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<name>[^:\[\]]*))(?::(?P<port>.*))?$")


class Unreachable(Exception):
    """No HTTP answer at all: connection refused, reset or timed out."""


def _odd_character(text):
    """(position, character) of the first whitespace or control/format character in text, or None."""
    for position, char in enumerate(text):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"):
            return position, char
    return None


def _host_problem(host, bracketed):
    """Why `host` (from a URL's authority) is no host a connection can go to, or None."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "has [%s] in brackets, which is not an IPv6 address" % host
        return None
    if not host:
        return "has no host"
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() and label.isascii() for label in labels):
        try:
            ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            return "has the host %s, which is not a valid IPv4 address (four numbers 0-255)" % host
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "has the host %s, which is not a valid host name (an empty or over-long label)" % host
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return ("has the host %s, which is not a host name (labels of letters, digits, '-' and '_', separated by "
                "dots) or an IP address" % host)
    return None


def url_problem(url):
    """Why `url` can never be probed, as the end of a sentence starting "url ... cannot be
    probed: it", or None when it can be.

    Accepted: scheme http or https (any case), a host (a name, an IPv4 address, or an IPv6
    address in brackets), an optional port 1-65535, an optional path; no user-visible whitespace
    or control character anywhere, no ?query or #fragment (the probe appends /health to the URL).
    A URL that passes may still be unreachable (nothing listens yet): that is "starting", not an
    error.
    """
    if not url or not url.strip():
        return "is empty"
    odd = _odd_character(url)
    if odd:
        return "holds a space or control character (%r at position %d)" % (odd[1], odd[0])
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return "cannot be parsed (%s)" % exc
    scheme = parts.scheme.lower()
    if "://" not in url or url.split("://", 1)[0].lower() != scheme:
        return "does not start with http:// or https://"
    if scheme not in URL_SCHEMES:
        return "has the scheme %s, which the probe does not speak" % parts.scheme
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "has a ?query or #fragment (the probe appends /health and /v1/models to the URL)"
    authority = parts.netloc.rsplit("@", 1)[-1]
    match = _HOST_PORT.match(authority)
    if not match:
        return "has a host and port that cannot be told apart (%s); an IPv6 address goes in brackets" % authority
    host_why = _host_problem(match.group("v6") if match.group("v6") is not None else match.group("name"),
                             match.group("v6") is not None)
    if host_why:
        return host_why
    port = match.group("port")
    if port == "":
        return "has an empty port after the ':'"
    if port is not None:
        if not (port.isdigit() and port.isascii()) or not 1 <= int(port) <= 65535:
            return "has the port %r, which is not a number from 1 to 65535" % port
    return None


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
