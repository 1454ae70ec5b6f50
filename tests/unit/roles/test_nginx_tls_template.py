"""nginx_tls's nginx.conf template across the switches the Molecule scenario does not turn:
TLS profile, nginx version (session tickets, the http2 directive), OCSP stapling, no upstreams,
no plain-HTTP listener, IPv6 off. (nginx -t on the result is the scenario's job.)"""
import pathlib

import jinja2
import pytest
import yaml

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "nginx_tls"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def render(**overrides):
    values = {k: v for k, v in DEFAULTS.items() if "{{" not in str(v)}
    values.update({k: v for k, v in VARS.items() if "{{" not in str(v)})
    values.update({
        "ansible_managed": "Ansible managed",
        "nginx_tls_server_names": ["edge.example.internal"],
        "nginx_tls_upstreams": [{"name": "a", "port": 8000, "gpus": [0]}, {"name": "b", "port": 8001, "gpus": [1]}],
        "nginx_tls_drain_file": "/var/lib/llmfleet/edge/drain",
        "nginx_tls_access_log": "/var/log/nginx/llmfleet-access.log",
        "nginx_tls_status_port": 8099,
        # The ports default to fleet_defaults' llmfleet_ports (templates, left out above).
        "nginx_tls_https_port": 443,
        "nginx_tls_http_port": 80,
        "__version": "1.22.1",
        "__nginx_tls_stapling": False,
        "__nginx_tls_ocsp_uri": "",
    })
    values.update(overrides)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True)
    return env.get_template("nginx.conf.j2").render(**values)


def directives(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_intermediate_on_debian_12():
    conf = directives(render())
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    ciphers = [d for d in conf if d.startswith("ssl_ciphers ")]
    assert len(ciphers) == 1 and ciphers[0].count(":") == 5 and "DHE-RSA" not in ciphers[0].replace("ECDHE-RSA", "")
    assert "ssl_ecdh_curve X25519:prime256v1:secp384r1;" in conf
    assert "ssl_session_tickets off;" in conf  # 1.22.1 < 1.23.2
    assert "listen 443 ssl http2 default_server;" in conf and "http2 on;" not in conf
    assert "listen [::]:443 ssl http2 default_server;" in conf
    assert "ssl_stapling on;" not in conf
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in conf
    assert "server 127.0.0.1:8000 max_fails=3 fail_timeout=10s;  # a" in conf
    assert "least_conn;" in conf and "proxy_buffering off;" in conf


def test_modern_profile_is_tls13_only_without_a_cipher_list():
    conf = directives(render(nginx_tls_profile="modern"))
    assert "ssl_protocols TLSv1.3;" in conf
    assert not [d for d in conf if d.startswith("ssl_ciphers")]


@pytest.mark.parametrize("version, tickets_off, http2_on", [
    ("1.18.0", True, False), ("1.23.2", False, False), ("1.24.0", False, False), ("1.25.1", False, True)])
def test_version_switches(version, tickets_off, http2_on):
    conf = directives(render(__version=version))
    assert ("ssl_session_tickets off;" in conf) is tickets_off
    assert ("http2 on;" in conf) is http2_on
    assert ("listen 443 ssl default_server;" in conf) is http2_on


def test_stapling_only_with_an_ocsp_responder():
    conf = directives(render(__nginx_tls_stapling=True, __nginx_tls_ocsp_uri="http://ocsp.example.internal",
                             nginx_tls_resolvers=["10.0.0.53"]))
    assert "ssl_stapling on;" in conf and "ssl_stapling_verify on;" in conf
    assert "resolver 10.0.0.53 valid=300s;" in conf


def test_no_upstreams_answers_503_everywhere():
    text = render(nginx_tls_upstreams=[])
    assert "upstream llmfleet_inference" not in text and "proxy_pass" not in text
    assert text.count("no inference service on this host") == 4  # health + three routes


def test_no_plain_http_listener_and_no_ipv6():
    conf = directives(render(nginx_tls_http_port=0, nginx_tls_ipv6=False, nginx_tls_https_port=8443))
    assert not [d for d in conf if d.startswith("listen 80") or "[::]" in d]
    assert "listen 8443 ssl http2 default_server;" in conf
    assert "return 308" not in " ".join(conf)


def test_redirect_names_a_non_default_port():
    assert "return 308 https://$host:8443$request_uri;" in directives(render(nginx_tls_https_port=8443))


def test_only_the_openai_routes_and_health_are_proxied():
    # The HTTPS server (the loopback status server comes before it).
    text = render()
    text = text[text.index("listen 443 ssl"):]
    exact = sorted(line.split()[2] for line in directives(text) if line.startswith("location = "))
    assert exact == ["/healthz", "/v1/chat/completions", "/v1/completions", "/v1/models"]
    assert "location / {" in text
    assert 'proxy_set_header Authorization "";' in text and 'proxy_set_header X-API-Key "";' in text


def test_access_log_never_names_the_body_query_or_keys():
    text = render()
    fmt = text[text.index("log_format"):text.index("access_log")]
    for forbidden in ("$request_body", "$request ", "$args", "$query_string", "$http_authorization",
                      "$http_x_api_key", "$llmfleet_presented_key", "$request_uri"):
        assert forbidden not in fmt


def test_stub_status_on_loopback_only_and_off_with_port_0():
    text = render()
    conf = directives(text)
    assert "listen 127.0.0.1:8099;" in conf and "stub_status;" in conf
    # The status server listens on loopback and nowhere else.
    status = text[text.index("listen 127.0.0.1:8099;"):]
    status = status[:status.index("\n    }\n")]
    assert "access_log off;" in status and "listen 8099" not in text
    conf_off = directives(render(nginx_tls_status_port=0))
    assert "stub_status;" not in conf_off and not [d for d in conf_off if "8099" in d]


def test_the_default_routes_share_the_edge_limits():
    conf = directives(render())
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models"):
        assert "location = %s {" % path in conf
    assert conf.count("limit_req zone=llmfleet_requests burst=20 nodelay;") == 3
    assert conf.count("limit_conn llmfleet_streams 16;") == 3
    assert not [d for d in conf if d.startswith("limit_req_zone") and "llmfleet_requests_" in d]


def test_a_route_group_gets_zones_and_limits_of_its_own():
    conf = directives(render(
        nginx_tls_routes=[{"path": "/v1/chat/completions"}, {"path": "/v1/models", "group": "catalog"},
                          {"path": "/v1/embeddings", "group": "catalog"}],
        nginx_tls_route_limits={"catalog": {"rate_per_second": 50, "burst": 0}}))
    assert "limit_req_zone $llmfleet_client zone=llmfleet_requests_catalog:10m rate=50r/s;" in conf
    assert "limit_conn_zone $llmfleet_client zone=llmfleet_streams_catalog:10m;" in conf
    assert conf.count("limit_req zone=llmfleet_requests_catalog burst=0 nodelay;") == 2
    # max_streams_per_client left out: the edge's value.
    assert conf.count("limit_conn llmfleet_streams_catalog 16;") == 2
    assert conf.count("limit_req zone=llmfleet_requests burst=20 nodelay;") == 1
    assert "location = /v1/completions {" not in conf
