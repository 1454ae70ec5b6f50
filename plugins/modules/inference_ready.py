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
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  url:
    description: The server's base URL, for example C(http://127.0.0.1:8000).
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for readiness. A large DeepSeek model can take close to an hour to load
        the first time; size it to the model.
    type: int
    default: 600
  interval:
    description: Seconds between two probes.
    type: float
    default: 2.0
  request_timeout:
    description: Seconds one HTTP request may take (a slow answer counts as starting).
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
    description: The model name the server must serve (as C(/v1/models) lists it). Empty accepts any.
    type: str
    default: ""
  api_key:
    description: Sent as C(Authorization Bearer) (to check through the TLS edge).
    type: str
    default: ""
  validate_certs:
    description: Verify the server's certificate (https URLs).
    type: bool
    default: true
  ca_path:
    description: A CA bundle to verify the server's certificate with.
    type: path
  wait:
    description: C(false) probes once and reports, without waiting or failing.
    type: bool
    default: true
notes:
  - Uses Ansible's own HTTP client (no extra Python package on the host).
  - Supports check mode (one probe, no wait).
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

import socket

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
        if params["timeout"] < 0 or params["interval"] <= 0 or params["request_timeout"] <= 0:
            self.module.fail_json(msg="timeout must be 0 or more, interval and request_timeout above 0 (got %s, %s, %s)"
                                  % (params["timeout"], params["interval"], params["request_timeout"]))
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
