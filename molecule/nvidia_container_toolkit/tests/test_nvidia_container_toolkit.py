"""nvidia_container_toolkit seen from outside: the toolkit from the signed TEST FIXTURE repository,
pinned and held; the user's Docker and containerd settings intact next to the NVIDIA runtime, as
the real dockerd and containerd read them; engines restarted only when their file changed; bad
input refused before any change; and a pin move done by the role."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

SCENARIO = scenario.scenario_dir()
PACKAGES = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
            "libnvidia-container1"]
RUNTIME = "/usr/bin/nvidia-container-runtime"


def _play(*extra_vars):
    return scenario.playbook("converge.yml", *scenario.extra_vars(*extra_vars), timeout=600)


def _user_file(name):
    with open(os.path.join(SCENARIO, name)) as handle:
        return handle.read()


def _states(host):
    out = host.check_output("dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES))
    return {l.split()[0]: (l.split()[1], l.split()[2]) for l in out.splitlines()}


def test_toolkit_from_the_signed_fixture_repository_pinned_and_held(host):
    for name, (version, status) in _states(host).items():
        assert version == "1.17.8-1" and status == "hi", (name, version, status)
    assert "TEST FIXTURE" in host.check_output("dpkg-query -W -f '${Description}' nvidia-container-toolkit")
    source = host.file("/etc/apt/sources.list.d/llmfleet-nvidia-container-toolkit.sources").content_string
    assert "Signed-By: /etc/apt/keyrings/llmfleet-nvidia-container-toolkit.asc" in source
    # apt trusts the repository only through that key: no [trusted=yes] shortcut.
    assert "trusted" not in source.lower()


def test_docker_keeps_every_user_setting_and_gains_the_runtime(host):
    user = json.loads(_user_file("user-daemon.json"))
    merged = json.loads(host.file("/etc/docker/daemon.json").content_string)
    nvidia = merged["runtimes"].pop("nvidia")
    assert nvidia == {"path": RUNTIME, "args": []}
    assert merged == user  # every key and the other runtime, untouched
    backups = host.check_output("ls /etc/docker/ | grep '^daemon.json\\..*~$' || true").split()
    assert backups, "no backup of the user's daemon.json"
    assert json.loads(host.file("/etc/docker/" + backups[0]).content_string) == user


def test_the_real_dockerd_reads_it(host):
    assert host.service("docker").is_running
    runtimes = json.loads(host.check_output("docker info --format '{{json .Runtimes}}'"))
    assert runtimes["nvidia"]["path"] == RUNTIME
    assert "runc-debug" in runtimes
    assert host.check_output("docker info --format '{{.Driver}} {{.LiveRestoreEnabled}}'") == "vfs true"


def test_containerd_keeps_comments_and_settings_and_gains_the_runtime(host):
    user = _user_file("user-config.toml")
    merged = host.file("/etc/containerd/config.toml").content_string
    for line in user.splitlines():
        assert line in merged.splitlines(), "lost: %r" % line
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in merged
    # What the real containerd makes of it.
    dump = host.check_output("containerd --config /etc/containerd/config.toml config dump")
    assert 'BinaryName = "%s"' % RUNTIME in dump
    assert 'sandbox_image = "registry.local/pause:3.9"' in dump
    assert "SystemdCgroup = true" in dump and 'address = "127.0.0.1:1338"' in dump
    assert host.service("containerd").is_running


@pytest.fixture
def engine_starts(host):
    def read():
        return {svc: host.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value %s" % svc)
                for svc in ("docker", "containerd")}
    return read


def test_a_second_run_changes_nothing_and_restarts_nothing(host, engine_starts):
    before = engine_starts()
    run = _play()
    assert run.returncode == 0, run.stdout + run.stderr
    out = " ".join(run.stdout.split())
    assert "changed=0" in out
    assert "CDI spec skipped" in out and "no NVIDIA GPU" in out
    assert engine_starts() == before


@pytest.mark.parametrize("extra, named", [
    ('{"nvidia_container_toolkit_runtimes": ["podman"]}', 'nvidia_container_toolkit_runtimes a list of docker and/or containerd (got ["podman"])'),
    ('{"nvidia_container_toolkit_repo_key_checksum": "abc"}', "nvidia_container_toolkit_repo_key_checksum \"sha256:<64 hex>\""),
    ('{"nvidia_container_toolkit_version": "latest"}', "nvidia_container_toolkit_version like \"1.17.8\" (got 'latest')"),
    ('{"nvidia_container_toolkit_engine_source": "snap"}',
     "value of nvidia_container_toolkit_engine_source must be one of: distribution, docker_repo, none, got: snap"),
])
def test_bad_input_is_refused_before_any_change(host, extra, named):
    before = host.check_output("md5sum /etc/docker/daemon.json /etc/containerd/config.toml")
    run = _play(extra)
    out = scenario.flat(run)
    assert run.returncode != 0
    assert named in out, out[-3000:]
    assert ("value of " in named or "Nothing was changed" in out) and "changed=0" in out
    assert host.check_output("md5sum /etc/docker/daemon.json /etc/containerd/config.toml") == before


def test_zz_pin_move_upgrades_in_order_and_holds_again(host):
    # Last: it moves the instance to the next version.
    config_before = host.check_output("md5sum /etc/docker/daemon.json /etc/containerd/config.toml")
    run = _play('{"nvidia_container_toolkit_version": "1.17.9"}')
    assert run.returncode == 0, run.stdout + run.stderr
    for name, (version, status) in _states(host).items():
        assert version == "1.17.9-1" and status == "hi", (name, version, status)
    assert host.check_output("md5sum /etc/docker/daemon.json /etc/containerd/config.toml") == config_before
    again = _play('{"nvidia_container_toolkit_version": "1.17.9"}')
    assert again.returncode == 0 and "changed=0" in again.stdout
