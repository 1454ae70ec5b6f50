"""The service seen from outside, with the trtllm-serve TEST DOUBLE: hardened units on loopback,
requests through the edge, a kill -9 followed by a restart and readiness, and the update paths -
a revision that never becomes ready rolls back while the old one keeps serving through the edge,
a corrupt revision and a misfit fail before anything changes, an unknown option fails by name, a
good revision rolls forward, a revision comes from an HTTP mirror, and the venv and container
install modes (a wheel double, a container engine double) serve. Times are printed
(restart-to-ready, rollback)."""
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

CA = os.path.join(os.environ["LLMFLEET_CA_DIR"], "ca.crt")
EDGE = "10.98.40.11"
KEY = "tester-0123456789abcdef0123456789abcdef"
MODELS = "/srv/llmfleet/models/deepseek-test"
UNITS = ["llmfleet-trtllm@0.service", "llmfleet-trtllm@1.service"]
testinfra_hosts = ["svc"]
IMAGE_ID = "sha256:" + hashlib.sha256(b"llmfleet-test-image").hexdigest()
VENV = "/opt/llmfleet/trtllm/tensorrt-llm-0.0.0+testdouble"
# From the mirror test on, the revision the host serves.
MIRRORED = {"trtllm_service_model_source": "http", "trtllm_service_model_src": "http://127.0.0.1:8090/rev3",
            "trtllm_service_model_revision": "rev3"}
VENV_MODE = {"trtllm_service_install_mode": "venv", "trtllm_service_version": "0.0.0+testdouble",
             "trtllm_service_wheelhouse": "/srv/wheelhouse-trtllm",
             # (libopenmpi-dev, the real wheel's need, is left out: the double needs none.)
             "trtllm_service_venv_packages": ["python3-venv"]}
CONTAINER_MODE = {"trtllm_service_install_mode": "container", "trtllm_service_image_id": IMAGE_ID,
                  "trtllm_service_container_engine_bin": "/usr/local/bin/llmfleet-engine-double",
                  "trtllm_service_image_archive": "/srv/images/tensorrt-llm-double.tar"}


@pytest.fixture(scope="module")
def svc():
    return scenario.node("svc")


def through_edge(path="/v1/models"):
    conn = http.client.HTTPSConnection(EDGE, 443, context=ssl.create_default_context(cafile=CA), timeout=10)
    conn.request("GET", path, headers={"Authorization": "Bearer " + KEY})
    resp = conn.getresponse()
    return resp.status, resp.read()


def converge(*extra):
    args = scenario.extra_vars(*extra)
    started = time.monotonic()
    run = scenario.playbook("converge.yml", *args)
    # Long messages wrap in Ansible's output: compare with whitespace folded.
    run.flat = scenario.flat(run)
    return run, time.monotonic() - started


def changed(run):
    return scenario.recap(run)["svc"]["changed"]


def score(svc, unit_file):
    svc.check_output("sed 's/^PrivateUsers=no/PrivateUsers=yes/' %s > /run/llmfleet-trtllm-score@0.service" % unit_file)
    out = svc.run("systemd-analyze security --offline=true /run/llmfleet-trtllm-score@0.service")
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout).group(1)), out.stdout


def pids(svc):
    return [svc.check_output("systemctl show -p MainPID --value %s" % unit) for unit in UNITS]


def current(svc):
    return svc.check_output("readlink %s/current" % MODELS)


def test_instances_run_hardened_on_loopback_as_their_user(svc):
    for unit in UNITS:
        assert svc.service(unit).is_running and svc.service(unit).is_enabled
    listening = svc.check_output("ss -Hltn")
    for port in (8000, 8001):
        assert "127.0.0.1:%d " % port in listening
        assert "0.0.0.0:%d " % port not in listening and "*:%d " % port not in listening
    for number, pid in enumerate(pids(svc)):
        assert svc.check_output("ps -o user= -p %s" % pid) == "trtllm"
        # (root in a container may not read another user's /proc/PID/environ: the double reports it.)
        health = json.loads(svc.check_output(
            "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:800%d/health').read().decode())\"" % number))
        assert health["cuda_visible_devices"] == str(number)
        cmdline = svc.check_output("tr '\\0' ' ' < /proc/%s/cmdline" % pid)
        assert "serve %s/current --host 127.0.0.1 --port 800%d" % (MODELS, number) in cmdline
        assert "--max_batch_size 8" in cmdline and "--trust_remote_code" in cmdline


def test_the_unit_scores_at_most_1_5(svc):
    # The production unit (PrivateUsers=yes; the test instance cannot create user namespaces).
    exposure, out = score(svc, "/etc/systemd/system/llmfleet-trtllm@.service")
    print("systemd-analyze security exposure (production unit): %.1f" % exposure)
    assert exposure <= 1.5, out[-2000:]
    live = svc.check_output("systemd-analyze security %s | tail -1" % UNITS[0])
    print("as run in the test instance (PrivateUsers=no): %s" % live)


def test_requests_reach_the_model_through_the_edge():
    status, body = through_edge()
    assert status == 200 and json.loads(body)["data"][0]["id"] == MODELS + "/current"
    assert through_edge("/healthz")[0] == 200


def test_kill_9_is_followed_by_restart_and_readiness(svc):
    before = pids(svc)[0]
    svc.check_output("kill -9 %s" % before)
    started = time.monotonic()
    ready = None
    while time.monotonic() - started < 60:
        pid = pids(svc)[0]
        if pid not in ("0", before):
            probe = svc.run("python3 -c \"import urllib.request;print(urllib.request.urlopen("
                            "'http://127.0.0.1:8000/health', timeout=2).status)\"")
            if probe.rc == 0 and probe.stdout.strip() == "200":
                ready = time.monotonic() - started
                break
        time.sleep(0.5)
    assert ready is not None, "instance 0 not ready 60 s after kill -9"
    print("kill -9 to ready: %.1f s (RestartSec=10, the double loads for 3 s)" % ready)
    assert ready < 30


def test_a_revision_that_never_becomes_ready_rolls_back_and_the_old_one_keeps_serving(svc):
    assert current(svc) == "rev1"
    run, took = converge({"trtllm_service_model_revision": "rev-never-ready", "trtllm_service_ready_timeout": 8})
    out = run.flat
    assert run.returncode != 0
    assert "did not become ready" in out and "rolled back to rev1, which is serving again" in out
    assert current(svc) == "rev1"
    assert all(svc.service(unit).is_running for unit in UNITS)
    assert through_edge()[0] == 200
    assert through_edge("/healthz")[0] == 200  # undrained
    assert not svc.file("/var/lib/llmfleet/edge/drain").exists
    print("failed update and rollback, whole run: %.1f s" % took)


def test_a_corrupt_revision_fails_before_anything_is_switched(svc):
    before = pids(svc)
    run, _took = converge({"trtllm_service_model_revision": "rev-corrupt"})
    out = run.flat
    assert run.returncode != 0
    assert "rev-corrupt does not match its manifest" in out and "model-00001.safetensors: FAILED" in out
    assert current(svc) == "rev1" and pids(svc) == before
    assert not svc.file(MODELS + "/rev-corrupt").exists
    assert through_edge()[0] == 200


def test_a_misfit_and_an_unknown_option_fail_before_any_change(svc):
    before = pids(svc)
    run, _took = converge({"trtllm_service_tp_size": 4})
    out = run.flat
    assert run.returncode != 0
    assert "svc: instance 0 has 1 GPUs [0]; tp_size 4 x pp_size 1 over 1 node(s) needs 4 per host" in out
    run, _took = converge({"trtllm_service_extra_llm_api_options": {"use_cuda_graph": True}})
    out = run.flat
    assert run.returncode != 0
    assert "trtllm_service_extra_llm_api_options: use_cuda_graph was renamed to cuda_graph_config" in out
    assert "TASK [trtllm_service : Create the service group]" not in run.stdout
    assert pids(svc) == before and current(svc) == "rev1"


def test_a_good_revision_rolls_forward_and_keeps_one_previous(svc):
    before = pids(svc)
    run, took = converge({"trtllm_service_model_revision": "rev2"})
    assert run.returncode == 0, run.stdout[-3000:]
    assert current(svc) == "rev2" and pids(svc) != before
    assert re.search(r"ready on 0, 1 after [\d.]+ s", run.stdout)
    assert through_edge()[0] == 200
    revisions = sorted(svc.check_output("ls %s" % MODELS).split())
    # rev-never-ready went (one kept besides the current: the one it replaced); the corrupt copy
    # stays as .partial for inspection.
    assert revisions == ["current", "rev-corrupt.partial", "rev1", "rev2"], revisions
    print("good update (drain 2 s, restart, ready), whole run: %.1f s" % took)


def test_a_revision_from_a_mirror_is_downloaded_verified_and_served(svc):
    run, took = converge(MIRRORED)
    assert run.returncode == 0, run.stdout[-3000:]
    assert current(svc) == "rev3"
    assert "Download the revision's files into <revision>.partial" in run.stdout
    assert svc.run("cd %s/rev3 && sha256sum --check --strict --quiet SHA256SUMS" % MODELS).rc == 0
    assert svc.file(MODELS + "/rev3/.llmfleet-verified").exists
    assert through_edge()[0] == 200
    print("revision from the mirror (download, check, roll), whole run: %.1f s" % took)


def test_the_venv_mode_installs_the_pinned_wheel_and_serves_from_it(svc):
    before = pids(svc)
    run, took = converge(MIRRORED, VENV_MODE)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "rolling the instances - unit changed" in run.flat
    assert svc.file(VENV + "/.llmfleet-installed").content_string.strip() == "tensorrt-llm==0.0.0+testdouble"
    assert "ExecStart=%s/bin/trtllm-serve serve" % VENV in svc.file("/etc/systemd/system/llmfleet-trtllm@.service").content_string
    after = pids(svc)
    assert after != before
    for pid in after:
        assert VENV + "/bin/trtllm-serve serve" in svc.check_output("tr '\\0' ' ' < /proc/%s/cmdline" % pid)
        assert svc.check_output("ps -o user= -p %s" % pid) == "trtllm"
    assert through_edge()[0] == 200
    again, _took = converge(MIRRORED, VENV_MODE)
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    print("switch to the venv mode (install, roll), whole run: %.1f s" % took)


def test_the_container_mode_refuses_an_archive_that_is_not_the_one_pinned(svc):
    before = pids(svc)
    wrong = dict(CONTAINER_MODE, trtllm_service_image_archive_sha256="0" * 64)
    run, _took = converge(MIRRORED, wrong)
    assert run.returncode != 0
    assert "trtllm_service_image_archive /srv/images/tensorrt-llm-double.tar has sha256" in run.flat
    assert "not trtllm_service_image_archive_sha256 " + "0" * 64 in run.flat
    assert not svc.file("/var/lib/llmfleet-test/engine/images.json").exists
    assert pids(svc) == before


def test_the_container_mode_loads_the_archive_and_runs_the_image_as_nvidia_documents(svc):
    archive_sha = svc.check_output("sha256sum /srv/images/tensorrt-llm-double.tar").split()[0]
    mode = dict(CONTAINER_MODE, trtllm_service_image_archive_sha256=archive_sha)
    run, took = converge(MIRRORED, mode)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Load the image archive (offline)" in run.stdout
    uid = svc.check_output("id -u trtllm")
    gid = svc.check_output("id -g trtllm")
    for number, unit in enumerate(UNITS):
        journal = svc.check_output("journalctl -u %s --no-pager -o cat | grep 'container engine: running' | tail -1" % unit)
        argv = json.loads(journal.split(": ", 2)[2])
        image = argv.index(IMAGE_ID)
        options, command = argv[1:image], argv[image + 1:]
        for wanted in ("--rm", "--network=host", "--ipc=host", "--ulimit=memlock=-1", "--ulimit=stack=67108864",
                       "--user=%s:%s" % (uid, gid), "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
                       "--device=nvidia.com/gpu=%d" % number, "--volume=/srv/llmfleet/models:/srv/llmfleet/models:ro"):
            assert wanted in options, (wanted, options)
        assert command[:6] == ["trtllm-serve", "serve", MODELS + "/current", "--host", "127.0.0.1", "--port"]
        assert command[6] == "800%d" % number
    assert through_edge()[0] == 200
    exposure, out = score(svc, "/etc/systemd/system/llmfleet-trtllm@.service")
    print("systemd-analyze security exposure (Docker client unit, production): %.1f" % exposure)
    assert exposure <= 2.0, out[-2000:]
    again, _took = converge(MIRRORED, mode)
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    print("switch to the container mode (load, roll), whole run: %.1f s" % took)


def test_an_image_that_cannot_be_had_fails_before_any_change(svc):
    before = pids(svc)
    other = "sha256:" + "1" * 64
    run, _took = converge(MIRRORED, {"trtllm_service_install_mode": "container",
                                     "trtllm_service_container_engine_bin": "/usr/local/bin/llmfleet-engine-double",
                                     "trtllm_service_image": "nvcr.io/nvidia/tensorrt-llm/release:9.9.9@" + other})
    assert run.returncode != 0
    assert "no registry can be reached to pull nvcr.io/nvidia/tensorrt-llm/release:9.9.9@" + other in run.flat
    assert pids(svc) == before and through_edge()[0] == 200
