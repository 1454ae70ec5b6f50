"""site.yml on GPU-less hosts: the GPU gate fails before any change, skips are visible, and the
run ends with a report of what was deployed where."""
import os
import re
import subprocess

import pytest

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
    assert ", Debian 12." in line[:80] and "gpu_nodes): roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, nginx_tls;" in line[:160]
    assert ("roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, nginx_tls; GPUs 0; skipped: GPU-only steps (nvidia_driver: module"
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
for path in ("/v1/models", "/healthz"):
    c = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    print(path, r.status, r.read().decode().strip())
'"""


def test_edge_serves_on_every_gpu_node_and_says_there_is_no_service_yet(host):
    out = host.check_output(EDGE_PROBE)
    assert "/v1/models 401 " in out  # no key
    assert '/healthz 503 {"status":"no inference service on this host"}' in out
