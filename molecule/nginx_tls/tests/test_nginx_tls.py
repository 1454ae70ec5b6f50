"""The TLS edge seen from outside - from the controller (this machine), as a client would see it:
the TLS profile (sslyze), who gets in, what is exposed, limits per client, streams that stream,
request ids and logs, draining and failover, and the configuration safety net (a broken value
and a wrong key fail and the old configuration keeps serving; a key rotation reloads, never
restarts, and no key appears in the output)."""
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

CA = os.path.join(os.environ["LLMFLEET_CA_DIR"], "ca.crt")
SSLYZE = os.environ["LLMFLEET_SSLYZE"]
EDGE = "10.98.30.11"
KEYS = {"alice": "alice-0123456789abcdef0123456789abcdef",
        "bob": "bob-fedcba9876543210fedcba9876543210"}
CONTROL_ROUTES = ["/update_weights", "/release_memory", "/resume_memory", "/server_info",
                  "/kv_cache_events", "/metrics", "/prometheus/metrics", "/health_generate",
                  "/version", "/health", "/v1/../server_info", "/docs", "/openapi.json"]
MOZILLA_TLS12 = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                 "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                 "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}
testinfra_hosts = ["edge"]
# Request ids unique to this run (the logs keep earlier runs' lines).
RUN = "%x" % int(time.time() * 1000)


@pytest.fixture(scope="module")
def edge():
    return scenario.node("edge")


def context():
    return ssl.create_default_context(cafile=CA)


def call(path, method="GET", key=None, header="bearer", body=None, headers=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPSConnection(EDGE, 443, context=context(), timeout=15)
    h = dict(headers or {})
    if key is not None:
        if header == "bearer":
            h["Authorization"] = "Bearer " + key
        else:
            h["X-API-Key"] = key
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    if own:
        conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def upstream_log(edge):
    out = edge.check_output("cat /var/log/llmfleet-test/double-8000.log /var/log/llmfleet-test/double-8001.log 2>/dev/null || true")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def playbook(*args):
    return scenario.playbook("converge.yml", *args, timeout=600)


def master_pid(edge):
    return edge.check_output("cat /run/nginx.pid")


# --- TLS ------------------------------------------------------------------------------------

def test_sslyze_finds_the_mozilla_intermediate_profile(tmp_path):
    out = tmp_path / "sslyze.json"
    run = subprocess.run([SSLYZE, "--mozilla_config=intermediate", "--certinfo_ca_file=" + CA,
                          "--json_out=" + str(out), EDGE + ":443"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "OK - Compliant" in run.stdout
    scan = json.loads(out.read_text())["server_scan_results"][0]["scan_result"]

    def accepted(kind):
        return {c["cipher_suite"]["openssl_name"] for c in scan[kind]["result"]["accepted_cipher_suites"]}
    for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        assert accepted(old) == set(), old
    assert accepted("tls_1_2_cipher_suites") and accepted("tls_1_2_cipher_suites") <= MOZILLA_TLS12
    assert accepted("tls_1_3_cipher_suites")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_protocols_are_refused_by_the_server(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection((EDGE, 443), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as err:
            ctx.wrap_socket(raw, server_hostname=EDGE)
    # The server's alert, not a client that cannot speak the protocol.
    assert "alert protocol version" in str(err.value).lower(), str(err.value)


def test_http2_is_offered_and_http_redirects_with_308():
    ctx = context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((EDGE, 443), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=EDGE) as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.3", "TLSv1.2")
    conn = http.client.HTTPConnection(EDGE, 80, timeout=5)
    conn.request("GET", "/v1/models?x=1")
    resp = conn.getresponse()
    assert resp.status == 308
    assert resp.getheader("Location") == "https://%s/v1/models?x=1" % EDGE


def test_headers_hsts_and_no_version():
    status, headers, _unused = call("/v1/models", key=KEYS["alice"])
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=63072000"
    assert headers["server"] == "nginx"
    assert headers["x-content-type-options"] == "nosniff"


# --- who gets in, what is exposed -----------------------------------------------------------

def test_no_key_and_wrong_key_get_401_json():
    for kwargs in ({}, {"key": "not-a-key-not-a-key-not-a-key-12345"},
                   {"key": "not-a-key-not-a-key-not-a-key-12345", "header": "x-api-key"},
                   {"headers": {"Authorization": "Basic " + KEYS["alice"]}}):
        for path, method in (("/v1/models", "GET"), ("/v1/chat/completions", "POST"), ("/v1/completions", "POST")):
            status, headers, body = call(path, method=method, body={} if method == "POST" else None, **kwargs)
            assert status == 401, (path, kwargs)
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["error"]["code"] == "invalid_api_key"
            assert headers["www-authenticate"].startswith("Bearer")


def test_good_key_in_either_header_gets_through():
    assert call("/v1/models", key=KEYS["alice"])[0] == 200
    assert call("/v1/models", key=KEYS["bob"], header="x-api-key")[0] == 200
    assert call("/v1/models", headers={"Authorization": "bearer " + KEYS["alice"]})[0] == 200
    status, _unused, body = call("/v1/chat/completions", "POST", key=KEYS["alice"], body={"messages": []})
    assert status == 200 and json.loads(body)["object"] == "chat.completion"
    status, _unused, body = call("/v1/completions", "POST", key=KEYS["bob"], body={"prompt": "x"})
    assert status == 200


def test_control_routes_are_refused_and_never_reach_the_service(edge):
    for path in CONTROL_ROUTES:
        for method in ("GET", "POST"):
            status, headers, body = call(path, method=method, key=KEYS["alice"], body={} if method == "POST" else None)
            assert status == 404, (method, path, status)
            assert json.loads(body)["error"]["code"] == "not_found"
    seen = {entry["path"] for entry in upstream_log(edge)}
    # (/health does reach the service - from the edge's own health route, never from a client.)
    reached = seen & (set(CONTROL_ROUTES) - {"/health"})
    assert reached == set(), reached


def test_the_service_never_sees_the_key_and_learns_the_client(edge):
    call("/v1/completions", "POST", key=KEYS["bob"], body={"prompt": "x"}, headers={"X-Request-ID": "whoami-" + RUN})
    entries = [e for e in upstream_log(edge) if e["headers"].get("X-Request-ID") == "whoami-" + RUN]
    assert len(entries) == 1
    headers = {k.lower(): v for k, v in entries[0]["headers"].items()}
    assert "authorization" not in headers and "x-api-key" not in headers
    assert headers["x-llmfleet-client"] == "bob"
    assert headers["x-forwarded-proto"] == "https"
    assert not any(k in json.dumps(upstream_log(edge)) for k in KEYS.values())


# --- request ids and logs -------------------------------------------------------------------

def test_request_id_is_echoed_and_passed_on(edge):
    status, headers, _unused = call("/v1/models", key=KEYS["alice"], headers={"X-Request-ID": "req-echo-42"})
    assert status == 200 and headers["x-request-id"] == "req-echo-42"
    status, headers, _unused = call("/v1/models", key=KEYS["alice"])
    generated = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    ids = [e["headers"].get("X-Request-ID") for e in upstream_log(edge)]
    assert "req-echo-42" in ids and generated in ids
    # An id that is not a plain token is replaced, not passed on.
    _unused, headers, _unused = call("/v1/models", key=KEYS["alice"], headers={"X-Request-ID": "bad id\"}"})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


def test_access_log_is_json_without_keys_or_prompts(edge):
    marker = "PROMPT-MARKER-%d" % time.time()
    call("/v1/chat/completions", "POST", key=KEYS["alice"], headers={"X-Request-ID": "log-check-" + RUN},
         body={"messages": [{"role": "user", "content": marker}]})
    call("/v1/models?api_key=%s" % KEYS["bob"], key=KEYS["bob"])
    time.sleep(0.2)
    text = edge.check_output("cat /var/log/nginx/llmfleet-access.log")
    entries = [json.loads(line) for line in text.splitlines()]
    mine = [e for e in entries if e["request_id"] == "log-check-" + RUN]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["client"] == "alice" and entry["status"] == 200 and entry["path"] == "/v1/chat/completions"
    assert entry["upstream"].startswith("127.0.0.1:800") and float(entry["upstream_response_time"]) >= 0
    assert entry["request_bytes"] > 0 and entry["response_bytes"] > 0
    everything = text + edge.check_output("cat /var/log/nginx/error.log")
    for key in KEYS.values():
        assert key not in everything
    assert marker not in everything


# --- streaming ------------------------------------------------------------------------------

def stream(key, shape, conn=None, started=None):
    """Read an SSE stream; returns [(arrival - sent_at) per chunk], status."""
    conn = conn or http.client.HTTPSConnection(EDGE, 443, context=context(), timeout=30)
    conn.request("POST", "/v1/chat/completions",
                 body=json.dumps({"stream": True, "messages": [], "llmfleet_test": shape}),
                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    resp = conn.getresponse()
    if started is not None:
        started.set()
    if resp.status != 200:
        return resp.status, resp.read(), []
    lags = []
    while True:
        line = resp.readline()
        now = time.time()
        if not line:
            break
        if line.startswith(b"data: {"):
            lags.append(now - json.loads(line[6:])["sent_at"])
    return resp.status, b"", lags


def test_sse_chunks_arrive_as_the_service_sends_them():
    status, _unused, lags = stream(KEYS["alice"], {"chunks": 6, "first_delay_ms": 300, "interval_ms": 150})
    assert status == 200 and len(lags) == 6
    print("edge lag per SSE chunk (ms): %s" % ", ".join("%.2f" % (1000 * lag) for lag in lags))
    # Buffered, the first chunk would wait for the next ones (150 ms) or the end (1 s).
    assert lags[0] < 0.010, lags
    assert max(lags) < 0.020, lags


# --- limits per client ----------------------------------------------------------------------

def test_burst_beyond_the_limit_gets_429_for_that_client_only():
    time.sleep(2)  # earlier tests used alice's allowance
    conn = http.client.HTTPSConnection(EDGE, 443, context=context(), timeout=15)
    statuses, bodies = [], []
    for _attempt in range(20):
        status, _unused, body = call("/v1/models", key=KEYS["alice"], conn=conn)
        statuses.append(status)
        bodies.append(body)
    conn.close()
    # rate 5/s, burst 5: about six pass at once, the rest are refused.
    assert 5 <= statuses.count(200) <= 8, statuses
    assert statuses.count(429) >= 12, statuses
    refused = json.loads(bodies[statuses.index(429)])
    assert refused["error"]["code"] == "rate_limit_exceeded"
    # Per client, not per address: bob, from the same address, is served.
    assert call("/v1/models", key=KEYS["bob"])[0] == 200


def test_concurrent_streams_beyond_the_limit_get_429():
    time.sleep(2)
    results = []
    started = [threading.Event(), threading.Event()]
    shape = {"chunks": 10, "first_delay_ms": 100, "interval_ms": 200}

    def hold(i):
        results.append(stream(KEYS["bob"], shape, started=started[i])[0])
    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for event in started:
        assert event.wait(10)
    status, _unused, body = call("/v1/chat/completions", "POST", key=KEYS["bob"], body={"stream": True})
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    # Another client is not held back by bob's streams.
    assert call("/v1/chat/completions", "POST", key=KEYS["alice"], body={"messages": []})[0] == 200
    for t in threads:
        t.join(30)
    assert results == [200, 200]


# --- health, drain, failover ----------------------------------------------------------------

def test_health_route_drains_and_follows_the_instances(edge):
    assert call("/healthz")[0] == 200
    edge.check_output("touch /var/lib/llmfleet/edge/drain")
    try:
        status, _unused, body = call("/healthz")
        assert status == 503 and json.loads(body)["status"] == "draining"
        # Draining tells the load balancers; requests in flight and new ones are still served.
        assert call("/v1/models", key=KEYS["bob"])[0] == 200
    finally:
        edge.check_output("rm -f /var/lib/llmfleet/edge/drain")
    assert call("/healthz")[0] == 200
    # One instance starting: the other answers; both starting: 503.
    edge.check_output("touch /run/llmfleet-test-8000/not-ready")
    try:
        assert all(call("/healthz")[0] == 200 for _attempt in range(4))
        edge.check_output("touch /run/llmfleet-test-8001/not-ready")
        assert call("/healthz")[0] == 503
    finally:
        edge.check_output("rm -f /run/llmfleet-test-8000/not-ready /run/llmfleet-test-8001/not-ready")


def test_a_stopped_instance_is_passed_over(edge):
    time.sleep(2)
    edge.check_output("systemctl stop llmfleet-test-double@8000.service")
    try:
        statuses = [call("/v1/models", key=KEYS[name])[0] for name in ("alice", "bob") * 3]
        assert statuses == [200] * 6, statuses
    finally:
        edge.check_output("systemctl start llmfleet-test-double@8000.service")


# --- files and processes --------------------------------------------------------------------

def test_secrets_are_root_only_and_workers_are_not_root(edge):
    for path in ("/etc/nginx/llmfleet/edge.pem", "/etc/nginx/llmfleet/api_keys.map"):
        f = edge.file(path)
        assert f.user == "root" and f.group == "root" and f.mode == 0o600, path
    assert edge.file("/etc/nginx/llmfleet").mode == 0o700
    assert not edge.file("/etc/nginx/sites-enabled/default").exists
    users = edge.check_output("ps -o user=,args= -C nginx").splitlines()
    assert any(u.startswith("root") and "master" in u for u in users)
    workers = [u for u in users if "worker" in u]
    assert workers and all(u.startswith("www-data") for u in workers), users


# --- the configuration safety net -----------------------------------------------------------

def test_a_broken_value_fails_before_reload_and_the_edge_keeps_serving(edge):
    before = edge.file("/etc/nginx/nginx.conf").sha256sum
    pid = master_pid(edge)
    run = playbook("-e", json.dumps({"nginx_tls_server_extra": ["llmfleet_no_such_directive on;"]}))
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "failed to validate" in out and 'unknown directive "llmfleet_no_such_directive"' in out
    assert edge.file("/etc/nginx/nginx.conf").sha256sum == before
    assert master_pid(edge) == pid
    assert call("/v1/models", key=KEYS["bob"])[0] == 200


def test_a_key_that_does_not_match_the_certificate_fails_on_the_controller(edge, tmp_path):
    before = edge.file("/etc/nginx/llmfleet/edge.pem").sha256sum
    other_key = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                               capture_output=True, text=True, check=True).stdout
    cert = open(os.path.join(os.environ["LLMFLEET_CA_DIR"], "hosts", "edge", "server.crt")).read()
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"nginx_tls_certificate_source": "provided",
                                 "nginx_tls_certificate": cert, "nginx_tls_certificate_key": other_key}))
    run = playbook("-e", "@" + str(extra))
    assert run.returncode != 0
    msg = "nginx_tls: nginx_tls_certificate_key is not the key of the certificate in nginx_tls_certificate"
    assert msg in run.stdout + run.stderr
    assert "TASK [nginx_tls : Install nginx]" not in run.stdout  # stopped on the controller
    assert other_key.splitlines()[1] not in run.stdout + run.stderr
    assert edge.file("/etc/nginx/llmfleet/edge.pem").sha256sum == before
    assert call("/v1/models", key=KEYS["alice"])[0] == 200


def test_check_mode_mints_no_key_material_on_the_controller(edge, tmp_path):
    """A drift run (--check) against a CA directory that does not exist yet creates nothing there:
    it says what the internal CA would make and reports the edge's certificate as a change."""
    before = edge.file("/etc/nginx/llmfleet/edge.pem").sha256sum
    fresh = tmp_path / "fresh-ca"
    run = playbook("--check", "--diff", "-e", json.dumps({"nginx_tls_internal_ca_dir": str(fresh)}))
    out = scenario.flat(run)
    assert run.returncode == 0, out[-3000:]
    assert "an internal CA would be created in %s and would sign a certificate for edge" % fresh in out
    assert not fresh.exists() or not any(fresh.rglob("*")), sorted(str(p) for p in fresh.rglob("*"))
    assert scenario.recap(run)["edge"]["changed"] >= 2  # the message and edge.pem
    assert edge.file("/etc/nginx/llmfleet/edge.pem").sha256sum == before


def test_the_modern_profile_is_what_sslyze_calls_modern(tmp_path):
    try:
        run = playbook("-e", "nginx_tls_profile=modern")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        scan = subprocess.run([SSLYZE, "--mozilla_config=modern", "--certinfo_ca_file=" + CA, EDGE + ":443"],
                              capture_output=True, text=True, timeout=300, check=False)
        assert scan.returncode == 0, scan.stdout[-3000:]
        ctx = context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((EDGE, 443), timeout=5) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname=EDGE)
    finally:
        run = playbook()
        assert run.returncode == 0, run.stdout[-3000:]
    assert call("/v1/models", key=KEYS["alice"])[0] == 200


def test_a_new_key_reloads_without_restart_and_no_key_is_printed(edge):
    pid = master_pid(edge)
    carol = "carol-" + hashlib.sha256(str(time.time()).encode()).hexdigest()[:40]
    keys = dict(KEYS, carol=carol)
    try:
        run = playbook("--diff", "-v", "-e", json.dumps({"nginx_tls_api_keys": keys}))
        assert run.returncode == 0, run.stdout[-3000:]
        for key in keys.values():
            assert key not in run.stdout + run.stderr
        # The key map and the reload, nothing else.
        assert "changed=2" in run.stdout
        assert re.search(r"TASK \[nginx_tls : Install the API keys[^\n]*\n(.*\n)*?changed: \[edge\]", run.stdout)
        assert "RUNNING HANDLER [nginx_tls : Reload nginx]" in run.stdout
        time.sleep(1)
        assert call("/v1/models", key=carol)[0] == 200
        assert master_pid(edge) == pid  # reloaded, not restarted
    finally:
        run = playbook()
        assert run.returncode == 0, run.stdout[-3000:]
    time.sleep(1)
    assert call("/v1/models", key=carol)[0] == 401
