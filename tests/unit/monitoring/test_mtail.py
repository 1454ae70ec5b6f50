"""The edge's mtail program (as the role renders it) on lines in nginx_tls's llmfleet_json
format, run by Debian's mtail: counts per route, status and client, latency histograms that
count every request (0.000 s too), only the inference routes. And the log format still has the
fields in the order the program's pattern reads them."""
import json
import re
import shutil
import subprocess

from conftest import MTAIL, ROOT

NGINX_CONF = ROOT / "roles" / "nginx_tls" / "templates" / "nginx.conf.j2"
FIELDS = ["time", "request_id", "client", "remote_addr", "method", "path", "protocol", "tls", "status",
          "request_bytes", "response_bytes", "request_time", "upstream", "upstream_status",
          "upstream_connect_time", "upstream_header_time", "upstream_response_time", "user_agent"]
NUMBERS = {"status", "request_bytes", "response_bytes", "request_time"}


def line(**values):
    """A log line as nginx writes it with escape=json (numbers unquoted, the rest strings)."""
    base = {"time": "2026-12-03T13:00:00+00:00", "request_id": "r", "client": "", "remote_addr": "10.0.0.1",
            "method": "POST", "path": "/v1/chat/completions", "protocol": "HTTP/1.1", "tls": "TLSv1.3",
            "status": "200", "request_bytes": "300", "response_bytes": "1000", "request_time": "0.100",
            "upstream": "127.0.0.1:8000", "upstream_status": "200", "upstream_connect_time": "0.000",
            "upstream_header_time": "0.050", "upstream_response_time": "0.100", "user_agent": "curl/8"}
    base.update(values)
    return "{" + ",".join('"%s":%s' % (k, base[k] if k in NUMBERS else json.dumps(base[k])) for k in FIELDS) + "}"


def test_the_log_format_has_the_fields_in_this_order():
    text = NGINX_CONF.read_text()
    fmt = text[text.index("log_format llmfleet_json"):text.index("access_log {{")]
    assert re.findall(r'\\?"([a-z_]+)\\?":', fmt.replace("'", "")) == FIELDS
    for name in NUMBERS:
        assert '"%s":$' % name in fmt.replace("'", ""), name


def run(program, lines, tmp_path):
    progs = tmp_path / "progs"
    progs.mkdir()
    shutil.copy(program, progs / "llmfleet_edge.mtail")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([MTAIL, "--progs", str(progs), "--logs", str(log), "--one_shot",
                           "--one_shot_format", "prometheus", "--emit_prog_label=false"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for ln in proc.stdout.splitlines():
        if ln and not ln.startswith("#"):
            key, value = ln.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_counts_latency_and_routes(rendered, tmp_path):
    lines = [
        line(client="alice", request_time="1.234", upstream_header_time="0.050", response_bytes="1234"),
        line(client="alice", request_time="0.000", upstream_header_time="0.000"),
        # Two upstreams tried: the header time of the one that answered counts.
        line(client="bob", path="/v1/completions", status="502", request_time="0.800",
             upstream="127.0.0.1:8000, 127.0.0.1:8001", upstream_header_time="0.002, 0.700"),
        # Refused at the edge (no upstream): counted, no time to first byte.
        line(path="/v1/models", method="GET", status="401", request_time="0.000", upstream="",
             upstream_status="", upstream_connect_time="", upstream_header_time="", upstream_response_time=""),
        # The health route and unknown paths are not inference requests.
        line(path="/healthz", method="GET", upstream_header_time="-"),
        line(path="/metrics", method="GET", status="404"),
    ]
    m = run(rendered / "node-1" / "llmfleet_edge.mtail", lines, tmp_path)
    assert m['llmfleet_edge_requests_total{client="alice",route="/v1/chat/completions",status="200"}'] == 2
    assert m['llmfleet_edge_requests_total{client="bob",route="/v1/completions",status="502"}'] == 1
    assert m['llmfleet_edge_requests_total{client="",route="/v1/models",status="401"}'] == 1
    assert not [k for k in m if "healthz" in k or "/metrics" in k]
    chat = 'route="/v1/chat/completions"'
    assert m['llmfleet_edge_request_duration_seconds_count{%s}' % chat] == 2
    # The 0.000 s request is in the first bucket, and +Inf holds every request.
    assert m['llmfleet_edge_request_duration_seconds_bucket{%s,le="0.05"}' % chat] == 1
    assert m['llmfleet_edge_request_duration_seconds_bucket{%s,le="+Inf"}' % chat] == 2
    assert abs(m['llmfleet_edge_request_duration_seconds_sum{%s}' % chat] - 1.234) < 1e-9
    assert m['llmfleet_edge_upstream_header_seconds_bucket{%s,le="0.05"}' % chat] == 2
    comp = 'route="/v1/completions"'
    assert m['llmfleet_edge_upstream_header_seconds_bucket{%s,le="0.5"}' % comp] == 0
    assert m['llmfleet_edge_upstream_header_seconds_bucket{%s,le="1"}' % comp] == 1
    assert not [k for k in m if k.startswith("llmfleet_edge_upstream_header_seconds") and "/v1/models" in k]
    assert m['llmfleet_edge_response_bytes_total{%s}' % chat] == 2234
