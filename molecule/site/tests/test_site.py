"""site.yml on GPU-less hosts: the GPU gate fails before any change, skips are visible, and the
run ends with a report of what was deployed where."""
import os
import re
import subprocess

import pytest
import testinfra

SCENARIO = os.environ["LLMFLEET_SCENARIO_DIR"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = ["site-node-1", "site-node-2"]


def _site(*args):
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml")] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def gated_run():
    """site.yml with llmfleet_require_gpu true (a production inventory) on hosts without GPUs."""
    return _site("-e", '{"llmfleet_require_gpu": true, "ubuntu_base_limits_nofile": 4096}')


@pytest.fixture(scope="module")
def plain_run():
    return _site()


def test_base_role_ran_on_every_host(host):
    assert host.file("/etc/sysctl.d/90-llmfleet.conf").exists
    assert host.user("llmfleet").exists


def test_driver_installed_and_held_on_every_gpu_node(host):
    smi = host.check_output("dpkg-query -W -f '${db:Status-Abbrev}' nvidia-smi")
    assert smi.strip() == "hi"
    # Without headers there is no DKMS build, and the run said so (test below).
    assert "installed" not in host.check_output("dkms status")


def test_required_gpu_missing_fails_before_any_change(host, gated_run):
    out = gated_run.stdout + gated_run.stderr
    assert gated_run.returncode != 0, out
    name = host.backend.get_hostname()
    assert "%s has no NVIDIA GPU on its PCI bus, and llmfleet_require_gpu is true" % name in out
    # The play stopped at the gate: no role task ran, nothing changed.
    assert "TASK [ubuntu_base" not in out and "TASK [gpu_tuning" not in out
    assert "changed=0" in out and not re.search(r"changed=[1-9]", out)
    assert "nofile 1048576" in host.file("/etc/security/limits.d/90-llmfleet.conf").content_string


def test_gpu_less_hosts_say_what_they_skip(host, plain_run):
    out = plain_run.stdout
    assert plain_run.returncode == 0, out + plain_run.stderr
    name = host.backend.get_hostname()
    assert "%s: no NVIDIA GPU on the PCI bus (llmfleet_require_gpu is false)" % name in out
    flat = " ".join(out.split())
    assert "gpu_tuning: GPU settings skipped on %s: no NVIDIA GPU on this host." % name in flat
    assert "nvidia_driver: %s has no NVIDIA GPU, so no module can load and the coherence gate is not checked" % name in flat


def test_report_names_each_host_and_what_was_skipped(host, plain_run):
    name = host.backend.get_hostname()
    out = " ".join(plain_run.stdout.split())  # the report wraps long lines
    line = out[out.index("%s (" % name):]
    assert ", Debian 12." in line[:80] and "gpu_nodes): roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, trtllm_service, nginx_tls;" in line[:160]
    assert ("roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, trtllm_service, nginx_tls; GPUs 0; skipped: GPU-only steps (nvidia_driver: module"
            " load, reboot and coherence gate, gpu_tuning: GPU settings through NVML)") in out
    assert "because there is no NVIDIA GPU on the PCI bus and llmfleet_require_gpu is false" in out


def test_drift_check_on_a_converged_fleet_reports_nothing():
    """`site.yml --check --diff` is what drift runs use: on a converged host it must be silent."""
    run = _site("--check", "--diff")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "changed=0" in run.stdout and not re.search(r"changed=[1-9]", run.stdout), run.stdout


def test_second_run_changes_nothing(plain_run):
    assert "changed=0" in plain_run.stdout and not re.search(r"changed=[1-9]", plain_run.stdout)


EDGE_PROBE = """python3 -c '
import http.client, ssl
ctx = ssl._create_unverified_context()
for path, key in (("/v1/models", ""), ("/v1/models", "site-test-0123456789abcdef0123456789abcdef"), ("/healthz", "")):
    c = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx, timeout=5)
    c.request("GET", path, headers={"Authorization": "Bearer " + key} if key else {})
    r = c.getresponse()
    print(path, "key" if key else "nokey", r.status, r.read().decode().strip())
'"""


def test_the_edge_serves_the_stand_in_model_service_on_every_gpu_node(host):
    out = host.check_output(EDGE_PROBE)
    assert "/v1/models nokey 401 " in out
    assert '/v1/models key 200 {"object": "list", "data": [{"id": "/srv/llmfleet/models/stand-in/current"' in out
    assert "/healthz nokey 200 " in out
    assert host.service("llmfleet-trtllm@0.service").is_running


def test_a_release_that_never_becomes_ready_stops_after_the_canary():
    """The last test: the canary (site-node-1) rolls back and fails; site-node-2 is never touched."""
    bad = '{"trtllm_service_model_revision": "r-never-ready", "trtllm_service_model_src": "/srv/llmfleet-stand-in/r-never-ready",' \
          ' "trtllm_service_ready_timeout": 5}'
    run = _site("-e", bad, "--tags", "trtllm_service")
    out = " ".join(run.stdout.split())
    everything = " ".join((run.stdout + run.stderr).split())  # (the failure's message is on stderr)
    assert run.returncode != 0
    assert "did not become ready on site-node-1" in everything and "rolled back to r1, which is serving again" in everything
    assert "NO MORE HOSTS LEFT" in out
    serve_play = out[out.index("PLAY [Serve the model behind the TLS edge, a canary host first]"):]
    assert "site-node-2" not in serve_play[:serve_play.index("PLAY RECAP")], serve_play[:3000]
    for name in testinfra_hosts:
        node = testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)
        assert node.check_output("readlink /srv/llmfleet/models/stand-in/current") == "r1"
        assert node.check_output(EDGE_PROBE).count(" 200 ") == 2
    assert not testinfra.get_host("ansible://site-node-2", ansible_inventory=INVENTORY).file(
        "/srv/llmfleet/models/stand-in/r-never-ready").exists
