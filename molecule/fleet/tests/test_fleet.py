"""The fleet as operators run it, on two GPU-less hosts: site.yml's GPU gate fails before any
change; drift made by hand on one host is reported by drift.yml with before and after values
(nothing changes); site.yml remediates it - skips visible, a report at the end, the untouched host
changed=0 within the task budget (so this run is also the fleet's idempotence run); and the next
drift run, under ansible-runner as AWX runs it, is clean and leaves its artifacts."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)
from scenario import node as _node, recap as _recap  # noqa: E402

ROOT = scenario.project_dir()
INVENTORY = scenario.inventory()
EPHEMERAL = scenario.ephemeral_dir()
testinfra_hosts = ["fleet-node-1", "fleet-node-2"]
# A no-op site.yml run may execute at most this many tasks per host (ok in the recap, skips not counted).
TASK_BUDGET = 120


def _site(*args):
    return scenario.playbook("converge.yml", *args)


@pytest.fixture(scope="module")
def gated_run():
    """site.yml with llmfleet_require_gpu true (a production inventory) on hosts without GPUs."""
    return _site("-e", '{"llmfleet_require_gpu": true, "ubuntu_base_limits_nofile": 4096}')


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


def test_gpu_less_hosts_say_what_they_skip(host, remediated):
    out = remediated.stdout
    assert remediated.returncode == 0, out + remediated.stderr
    name = host.backend.get_hostname()
    assert "%s: no NVIDIA GPU on the PCI bus (llmfleet_require_gpu is false)" % name in out
    flat = " ".join(out.split())
    assert "gpu_tuning: GPU settings skipped on %s: no NVIDIA GPU on this host." % name in flat
    assert "nvidia_driver: %s has no NVIDIA GPU, so no module can load and the coherence gate is not checked" % name in flat


def test_report_names_each_host_and_what_was_skipped(host, remediated):
    name = host.backend.get_hostname()
    out = " ".join(remediated.stdout.split())  # the report wraps long lines
    line = out[out.index("%s (" % name):]
    assert ", Debian 12." in line[:80] and "gpu_nodes): roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, trtllm_service, nginx_tls;" in line[:160]
    assert ("roles ubuntu_base, firewall, nvidia_driver, gpu_tuning, trtllm_service, nginx_tls; GPUs 0; skipped: GPU-only steps (nvidia_driver: module"
            " load, reboot and coherence gate, gpu_tuning: GPU settings through NVML)") in out
    assert "because there is no NVIDIA GPU on the PCI bus and llmfleet_require_gpu is false" in out


def test_site_remediates_only_the_drifted_hosts_and_the_no_op_host_stays_within_the_task_budget(remediated):
    recap = _recap(remediated)
    assert sorted(h for h in recap if h != "localhost") == testinfra_hosts, remediated.stdout[-3000:]
    for name in testinfra_hosts:
        print("site.yml after the drift on %s: %d tasks ran (%d changed), %d skipped"
              % (name, recap[name]["ok"], recap[name]["changed"], recap[name]["skipped"]))
    # The untouched host: a second converge, no change, at most TASK_BUDGET tasks.
    assert recap["fleet-node-1"]["changed"] == 0, remediated.stdout
    assert recap["fleet-node-1"]["ok"] <= TASK_BUDGET, recap["fleet-node-1"]
    assert recap["fleet-node-2"]["changed"] > 0, recap


def test_the_serve_play_runs_the_canary_then_batches_of_llmfleet_serve_serial(remediated):
    assert _batches(remediated.stdout) == [["fleet-node-1"], ["fleet-node-2"]], _batches(remediated.stdout)


def test_the_run_recorded_its_converge_on_each_host(host, remediated):
    fact = json.loads(host.file("/etc/ansible/facts.d/llmfleet.fact").content_string)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", fact["last_converge"]), fact
    assert fact["playbook"] == "site.yml"


EDGE_PROBE = scenario.edge_probes(("/v1/models", ""), ("/v1/models", "fleet-test-0123456789abcdef0123456789abcdef"), ("/healthz", ""))


def test_the_edge_serves_the_stand_in_model_service_on_every_gpu_node(host):
    out = host.check_output(EDGE_PROBE)
    assert "/v1/models nokey 401 " in out
    assert '/v1/models key 200 {"object": "list", "data": [{"id": "/srv/llmfleet/models/stand-in/current"' in out
    assert "/healthz nokey 200 " in out
    assert host.service("llmfleet-trtllm@0.service").is_running


# -- drift ---------------------------------------------------------------------------------------
# What someone changes by hand on a converged host: a kernel setting, a rule let into the firewall,
# the driver's hold released, the edge's configuration and the model service's options edited.
HAND_MADE = {
    "fleet-node-2": [
        "sed -i 's/^vm.swappiness = .*/vm.swappiness = 60/' /etc/sysctl.d/90-llmfleet.conf",
        "iptables -I LLMFLEET-INPUT 1 -p tcp --dport 2222 -j ACCEPT",
        "apt-mark unhold nvidia-smi",
        "sed -i 's/keepalive_timeout [0-9]*s*;/keepalive_timeout 300s;/' /etc/nginx/nginx.conf",
        "printf 'kv_cache_config:\\n  free_gpu_memory_fraction: 0.99\\n' > /etc/llmfleet/trtllm/extra_llm_api_options.yml",
    ],
}


def _drift(report_dir, *args):
    return scenario.playbook(os.path.join(ROOT, "playbooks", "drift.yml"), "--check", "--diff",
                             "-e", json.dumps({"llmfleet_drift_report_dir": report_dir}), *args)


@pytest.fixture(scope="module")
def drifted():
    before = {n: _node(n).file("/etc/nginx/nginx.conf").content_string for n in testinfra_hosts}
    for name, commands in HAND_MADE.items():
        node = _node(name)
        for command in commands:
            node.run_expect([0], command)
    assert "keepalive_timeout 300s;" in _node("fleet-node-2").file("/etc/nginx/nginx.conf").content_string
    report_dir = os.path.join(EPHEMERAL, "drift-reports")
    shutil.rmtree(report_dir, ignore_errors=True)
    run = _drift(report_dir)
    with open(os.path.join(report_dir, "latest.json")) as f:
        report = json.load(f)
    # What the hosts hold right after the drift run (the tests below read it after remediation).
    after = {
        "sysctl": _node("fleet-node-2").file("/etc/sysctl.d/90-llmfleet.conf").content_string,
        "nginx": _node("fleet-node-2").file("/etc/nginx/nginx.conf").content_string,
        "hold": _node("fleet-node-2").check_output("dpkg-query -W -f '${db:Status-Abbrev}' nvidia-smi").strip(),
        "rules": _node("fleet-node-2").check_output("iptables -S LLMFLEET-INPUT"),
    }
    return {"run": run, "report": report, "dir": report_dir, "nginx_before": before, "after_drift_run": after}


@pytest.fixture(scope="module")
def remediated(drifted):
    """site.yml after the drift run: it puts the drifted hosts right and changes nothing on the
    other; the serve play in batches of llmfleet_serve_serial [1, 2] (the canary, then the rest)."""
    return _site("-e", '{"llmfleet_serve_serial": [1, 2]}')


SERVE_PLAY = "PLAY [Serve the model behind the TLS edge, a canary host first]"


def _batches(out):
    """The hosts of each batch of the serve play, in order (each batch prints the play's header)."""
    batches = []
    for part in out.split(SERVE_PLAY)[1:]:
        part = re.split(r"\nPLAY \[|\nPLAY RECAP", part)[0]
        batches.append(sorted(set(re.findall(r"(fleet-node-\d)", part))))
    return batches


def _changes(report, name):
    row = [h for h in report["hosts"] if h["host"] == name][0]
    return row, {(c["role"], c["task"]): c for c in row["changes"]}


def test_drift_run_fails_and_names_the_drifted_hosts(drifted):
    run = drifted["run"]
    out = scenario.flat(run)
    assert run.returncode == 2, out[-4000:]
    assert "Drift: fleet-node-2;" in out
    report = drifted["report"]
    assert report["clean"] is False
    assert report["drifted_hosts"] == ["fleet-node-2"] and report["failed_hosts"] == []
    # The untouched host: read completely, nothing differs.
    row = _changes(report, "fleet-node-1")[0]
    assert row["status"] == "ok" and row["drift"] == 0 and row["gpus"] == 0
    assert row["last_converge"], row


def test_each_hand_made_change_is_reported_with_before_and_after(drifted):
    report = drifted["report"]
    row, changes = _changes(report, "fleet-node-2")
    print("fleet-node-2 drift:", sorted(changes))
    sysctl = [c for (role, _task), c in changes.items() if role == "ubuntu_base" and any("vm.swappiness" in d["diff"] for d in c["diffs"])]
    assert sysctl, changes
    assert "-vm.swappiness = 60" in sysctl[0]["diffs"][0]["diff"] and "+vm.swappiness = 10" in sysctl[0]["diffs"][0]["diff"]
    firewall = [c for (role, _task), c in changes.items() if role == "firewall"]
    assert firewall and any("2222" in d["diff"] for c in firewall for d in c["diffs"]), firewall

    hold = [c for (role, _task), c in changes.items() if role == "nvidia_driver"]
    assert hold, changes
    nginx = [d for (role, _task), c in changes.items() if role == "nginx_tls" for d in c["diffs"]
             if "keepalive_timeout 300s;" in (d["before"] or "")]
    assert nginx and "keepalive_timeout 65s;" in nginx[0]["after"] and "-    keepalive_timeout 300s;" in nginx[0]["diff"], changes
    service = [c for (role, _task), c in changes.items() if role == "trtllm_service"
               and any("free_gpu_memory_fraction: 0.99" in (d["before"] or "") for d in c["diffs"])]
    assert service, changes
    # A restart of the service and a reload of the edge would follow: listed, not counted.
    assert row["handlers"], row


def test_the_html_page_has_the_fleet_table(drifted):
    with open(os.path.join(drifted["dir"], "latest.html")) as f:
        html = f.read()
    assert "<th>Host</th><th>Status</th><th>GPUs</th><th>Driver</th><th>Drift</th><th>Last converge</th>" in html
    for name in testinfra_hosts:
        assert ">%s</a></td>" % name in html
    assert "vm.swappiness = 60" in html


def test_the_drift_run_changed_nothing(drifted):
    after = drifted["after_drift_run"]
    assert "vm.swappiness = 60" in after["sysctl"]
    assert "keepalive_timeout 300s;" in after["nginx"]
    assert after["hold"] == "ii"
    assert "--dport 2222 -j ACCEPT" in after["rules"]


def _runner(private, playbook, cmdline):
    """ansible-runner as AWX runs a job: a private data dir with the project, the inventory, the
    environment; the repository's ansible.cfg found in the project directory."""
    os.makedirs(os.path.join(private, "env"), exist_ok=True)
    project = os.path.join(private, "project")
    if not os.path.exists(project):
        os.symlink(ROOT, project)
    envvars = {
        "DOCKER_HOST": os.environ.get("DOCKER_HOST", ""),
        "ANSIBLE_NOCOLOR": "1",
    }
    if os.environ.get("LLMFLEET_STRATEGY_PLUGINS") and os.environ.get("LLMFLEET_STRATEGY", "linear") != "linear":
        envvars.update(ANSIBLE_STRATEGY=os.environ["LLMFLEET_STRATEGY"], ANSIBLE_STRATEGY_PLUGINS=os.environ["LLMFLEET_STRATEGY_PLUGINS"])
    with open(os.path.join(private, "env", "envvars"), "w") as f:
        json.dump(envvars, f)
    # As AWX: nothing of this test's own Ansible settings (Molecule's config) reaches the job.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    runner = os.path.join(os.path.dirname(sys.executable), "ansible-runner")
    return subprocess.run([runner, "run", private, "-p", playbook, "--inventory", os.path.dirname(INVENTORY),
                           "--ident", "drift", "--cmdline", cmdline], capture_output=True, text=True,
                          env=env, timeout=900, check=False)


def test_site_remediated_and_the_next_drift_run_is_clean_under_ansible_runner(drifted, remediated):
    assert remediated.returncode == 0, remediated.stdout[-4000:] + remediated.stderr[-2000:]
    assert _node("fleet-node-2").check_output("dpkg-query -W -f '${db:Status-Abbrev}' nvidia-smi").strip() == "hi"
    assert _node("fleet-node-2").file("/etc/nginx/nginx.conf").content_string == drifted["nginx_before"]["fleet-node-2"]
    assert "2222" not in _node("fleet-node-2").check_output("iptables -S LLMFLEET-INPUT")

    private = os.path.join(EPHEMERAL, "runner")
    shutil.rmtree(private, ignore_errors=True)
    report_dir = os.path.join(private, "drift-reports")
    run = _runner(private, "drift.yml", "--check --diff -e llmfleet_drift_report_dir=%s" % report_dir)
    artifacts = os.path.join(private, "artifacts", "drift")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    with open(os.path.join(artifacts, "status")) as f:
        assert f.read().strip() == "successful"
    with open(os.path.join(artifacts, "rc")) as f:
        assert f.read().strip() == "0"
    # The job's events, as AWX stores them; the set_stats summary is in the stats event.
    events = []
    for path in glob.glob(os.path.join(artifacts, "job_events", "*.json")):
        with open(path) as f:
            events.append(json.load(f))
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert len(stats) == 1, sorted({e.get("event") for e in events})
    summary = stats[0]["event_data"]["artifact_data"]["llmfleet_drift"]
    print("drift summary (AWX artifacts):", json.dumps(summary["totals"]))
    assert summary["clean"] is True and summary["totals"] == {"hosts": 2, "drifted": 0, "failed": 0, "changes": 0}
    assert sorted(summary["hosts"]) == testinfra_hosts
    with open(os.path.join(report_dir, "latest.json")) as f:
        assert json.load(f)["clean"] is True
    # The remediating run was a converge: the hosts say so.
    with open(os.path.join(report_dir, "latest.json")) as f:
        rows = json.load(f)["hosts"]
    for row in rows:
        assert row["last_converge"] > [h for h in drifted["report"]["hosts"] if h["host"] == row["host"]][0]["last_converge"]
