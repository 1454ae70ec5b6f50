#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: inference_ready
short_description: Wait until an OpenAI-compatible inference server really answers
version_added: "0.1.0"
description:
  - Polls an OpenAI-compatible server (C(trtllm-serve)) until it is ready. A refused, reset or
    timed-out connection and any answer but 200 from C(/health) (C(trtllm-serve) answers 503
    with C(x-trtllm-server-state starting) while it loads) mean B(starting) - keep waiting, up to
    O(timeout).
  - Ready means C(/health) 200, C(/v1/models) 200 (listing O(model) when it is given), and, with
    O(deep), C(/health_generate) 200 or a one-token completion 200. A server that serves another
    model than O(model) fails at once (waiting would not help).
  - Returns the time to ready, the last status and reason, the models served and the server's
    version (C(/version)); on timeout it fails with the last error.
  - Read-only. In check mode it probes once and does not wait or fail (on a host being built the
    server may not exist yet); C(ready) says what it saw.
  - Options no probe could ever succeed with fail at once, in check mode too and before any
    probe, naming the option, its value and what is accepted - a URL that is not http or https,
    has no host, a port outside 1-65535, spaces, a query; a timeout or interval that is not above
    0; an O(api_key) an HTTP header cannot carry; an O(ca_path) that is no file of certificates.
    Waiting out O(timeout) would not help them.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  url:
    description:
      - The server's base URL, for example C(http://127.0.0.1:8000) or
        C(https://edge.example.internal/llm).
      - Scheme C(http) or C(https); a host (a name, an IPv4 address, or an IPv6 address in
        brackets); an optional port 1-65535 and path; no whitespace or control character, no
        C(?query) or C(#fragment) (the probe appends C(/health) and C(/v1/models)). Anything else
        fails at once naming O(url).
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for readiness, above 0 and at most a year (31536000). A large DeepSeek
        model can take close to an hour to load the first time; size it to the model.
      - To probe once without waiting, use O(wait=false).
    type: int
    default: 600
  interval:
    description:
      - Seconds between two probes, above 0 and at most a year. Longer than O(timeout) is allowed
        with a warning (a probe at the start and one at the deadline).
    type: float
    default: 2.0
  request_timeout:
    description: Seconds one HTTP request may take (a slow answer counts as starting), above 0 and at most a year.
    type: int
    default: 10
  deep:
    description:
      - The deeper check once C(/health) is 200. C(none) stops there; C(health_generate) asks
        C(/health_generate) (C(trtllm-serve) runs a one-token generation); C(completion) posts a
        one-token C(/v1/completions) for O(model) (or the first model served).
    type: str
    choices: [none, health_generate, completion]
    default: none
  model:
    description:
      - The model name the server must serve (as C(/v1/models) lists it). Empty accepts any.
      - A name that starts or ends with whitespace or holds a control character can never match
        and fails at once.
    type: str
    default: ""
  api_key:
    description:
      - Sent as C(Authorization Bearer) (to check through the TLS edge). Printable ASCII without
        spaces; anything else fails at once (the value is never shown).
    type: str
    default: ""
  validate_certs:
    description: Verify the server's certificate (https URLs).
    type: bool
    default: true
  ca_path:
    description:
      - A file of PEM CA certificates to verify the server's certificate with, on the host the
        module runs on. A path that does not exist, a directory or a file without a certificate
        fails at once. With an C(http) O(url) or O(validate_certs=false) it is not used (a warning
        says so).
    type: path
  wait:
    description: C(false) probes once and reports, without waiting or failing.
    type: bool
    default: true
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.read_only
attributes:
  check_mode:
    description: Probes once and reports, without waiting or failing; bad options fail as they do outside check mode.
notes:
  - Uses Ansible's own HTTP client (no extra Python package on the host).
seealso:
  - name: trtllm-serve
    description: TensorRT-LLM's OpenAI-compatible server.
    link: https://nvidia.github.io/TensorRT-LLM/commands/trtllm-serve/trtllm-serve.html
"""

EXAMPLES = r"""
- name: Wait until instance 0 answers (it may load for a long time)
  llmfleet.deepseek.inference_ready:
    url: http://127.0.0.1:8000
    timeout: 3600
    deep: health_generate
    model: deepseek-ai/DeepSeek-R1
  register: ready

- name: Report the time it took
  ansible.builtin.debug:
    msg: "ready after {{ ready.elapsed }} s, version {{ ready.version }}"

- name: Look once, through the edge, without waiting
  llmfleet.deepseek.inference_ready:
    url: https://edge.example.internal
    api_key: "{{ vault_probe_key }}"
    ca_path: /etc/ssl/certs/site-ca.pem
    wait: false
"""

RETURN = r"""
ready:
  description: Whether the server was ready.
  returned: always
  type: bool
state:
  description: C(ready), C(starting) (not ready yet) or C(failed) (ready, but not serving O(model)).
  returned: always
  type: str
elapsed:
  description: Seconds from the first probe to the last (the time to ready when ready).
  returned: always
  type: float
probes:
  description: How many probes were made.
  returned: always
  type: int
starting_seen:
  description: Whether any probe found the server starting (refused, 503, ...) before the last one.
  returned: always
  type: bool
status:
  description: The last HTTP status seen (null when there was no answer).
  returned: always
  type: int
reason:
  description: Why the last probe was not ready (empty when ready).
  returned: always
  type: str
server_state:
  description: The last C(x-trtllm-server-state) header (C(starting) while trtllm-serve loads).
  returned: always
  type: str
models:
  description: The models C(/v1/models) listed (null before it answered).
  returned: always
  type: list
  elements: str
version:
  description: The server's version from C(/version) (null when it has none).
  returned: always
  type: str
"""

import math
import os
import socket
import ssl

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url
from ansible_collections.llmfleet.deepseek.plugins.module_utils import readiness


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            timeout=dict(type="int", default=600),
            interval=dict(type="float", default=2.0),
            request_timeout=dict(type="int", default=10),
            deep=dict(type="str", default="none", choices=list(readiness.DEEP_CHECKS)),
            model=dict(type="str", default=""),
            api_key=dict(type="str", default="", no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            wait=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )


# Longer than any real wait, short enough for the socket and sleep calls (larger values overflow them).
MAX_SECONDS = 365 * 24 * 3600


def _ca_path_problem(path):
    """Why `path` cannot serve as the CA bundle (the end of a sentence), or None. Checked on the
    host, where the module runs: open_url loads the file for every URL, http ones too."""
    if not os.path.exists(path):
        return "does not exist on the host"
    if os.path.isdir(path):
        return "is a directory, not a file of certificates"
    try:
        ssl.create_default_context(cafile=path)
    except (IOError, OSError, ValueError) as exc:
        # ssl.SSLError (no certificate in the file) and PermissionError are OSErrors.
        return "cannot be loaded as CA certificates (%s)" % (getattr(exc, "strerror", None) or exc)
    return None


def check_options(params):
    """(problems, warnings) of the module's options, before any probe.

    A problem is an option no probe could ever succeed with (the module fails at once, in check
    mode too, naming the option, its value and what is accepted) - waiting out `timeout` would
    not help. A warning is a value that is legal but probably not what was meant.
    """
    problems, warnings = [], []
    why = readiness.url_problem(params["url"])
    if why:
        problems.append("url %r cannot be probed: it %s; %s" % (params["url"], why, readiness.URL_ACCEPTED))
    for option, whole in (("timeout", True), ("interval", False), ("request_timeout", True)):
        value = params[option]
        if not (0 < value <= MAX_SECONDS and math.isfinite(value)):
            problems.append("%s must be a %s of seconds above 0 and at most %d (a year), got %s%s"
                            % (option, "whole number" if whole else "number", MAX_SECONDS, value,
                               " (to probe once without waiting, use wait: false)" if option == "timeout" and value == 0 else ""))
    if not problems and params["wait"] and params["interval"] > params["timeout"]:
        warnings.append("interval %s is longer than timeout %s: the server is probed at the start and once more at the deadline"
                        % (params["interval"], params["timeout"]))
    key = params["api_key"] or ""
    bad = [(i, c) for i, c in enumerate(key) if not 0x21 <= ord(c) <= 0x7e]
    if bad:
        problems.append("api_key cannot be sent as an HTTP header: it holds a space, control or non-ASCII character "
                        "at position %d (the value is not shown); a bearer token is printable ASCII without spaces"
                        % bad[0][0])
    model = params["model"] or ""
    if model and (model != model.strip() or any(ord(c) < 0x20 or ord(c) == 0x7f for c in model)):
        problems.append("model %r can never match a served model: it starts or ends with whitespace or holds a "
                        "control character; give the name as /v1/models lists it (for example "
                        "deepseek-ai/DeepSeek-R1), or leave it empty to accept any" % model)
    if params["ca_path"]:
        why = _ca_path_problem(params["ca_path"])
        if why:
            problems.append("ca_path %s %s; give a file of PEM CA certificates the host can read" % (params["ca_path"], why))
        elif params["url"].lower().startswith("http://"):
            warnings.append("ca_path %s is given but url %s is plain http: no certificate is checked"
                            % (params["ca_path"], params["url"]))
        elif not params["validate_certs"]:
            warnings.append("ca_path %s is given but validate_certs is false: the certificate is not checked"
                            % params["ca_path"])
    return problems, warnings


class Ready:
    """The module; `fetch` is the seam the unit tests may replace."""

    def __init__(self, module, sleep=None):
        self.module = module
        self.sleep = sleep

    def fetch(self, method, path, body):
        params = self.module.params
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if params["api_key"]:
            headers["Authorization"] = "Bearer " + params["api_key"]
        url = params["url"].rstrip("/") + path
        try:
            resp = open_url(url, method=method, data=body, headers=headers, timeout=params["request_timeout"],
                            validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                            follow_redirects="none")
            return resp.getcode(), {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode("utf-8", "replace")
        except HTTPError as exc:
            text = exc.read().decode("utf-8", "replace") if exc.fp else ""
            return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, text
        except URLError as exc:
            raise readiness.Unreachable(str(getattr(exc, "reason", exc)))
        except (socket.error, socket.timeout, ValueError) as exc:
            # ConnectionRefused/Reset, RemoteDisconnected and timeouts are socket errors here.
            raise readiness.Unreachable("%s: %s" % (type(exc).__name__, exc))

    def run(self):
        params = self.module.params
        problems, warnings = check_options(params)
        if problems:
            self.module.fail_json(msg="inference_ready cannot run with these options, nothing was probed: %s"
                                  % "; ".join(problems))
        for warning in warnings:
            self.module.warn(warning)
        once = self.module.check_mode or not params["wait"]
        kwargs = {"sleep": self.sleep} if self.sleep else {}
        result = readiness.wait(self.fetch, 0 if once else params["timeout"], params["interval"],
                                params["deep"], params["model"] or None, **kwargs)
        result["changed"] = False
        if not once and not result["ready"]:
            if result["state"] == readiness.FAILED:
                msg = "%s is up but wrong: %s" % (params["url"], result["reason"])
            else:
                msg = "%s was not ready after %s s (%d probes): %s" % (
                    params["url"], result["elapsed"], result["probes"], result["reason"])
            self.module.fail_json(msg=msg, **result)
        if once and not result["ready"]:
            result["msg"] = "one probe%s, not ready: %s" % (" (check mode)" if self.module.check_mode else "",
                                                            result["reason"])
        return result


def main():
    module = build_module()
    module.exit_json(**Ready(module).run())


if __name__ == "__main__":
    main()
