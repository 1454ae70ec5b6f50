"""nvidia_driver on a GPU-less Debian 12 instance, seen from outside: Debian's packages installed
without recommends, pinned and held, a real DKMS build for Debian's kernel, nouveau blacklisted,
nvidia-persistenced enabled but skipped (no module), the role's own report of what it could not
do here, and bad input refused before any change."""
import os
import re
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

SCENARIO = scenario.scenario_dir()
with open(os.path.join(SCENARIO, "converge.yml")) as _handle:
    DRIVER = yaml.safe_load(_handle)[0]["vars"]["nvidia_driver_version"]
PACKAGES = ["nvidia-kernel-dkms", "firmware-nvidia-gsp", "nvidia-kernel-support", "libcuda1",
            "libnvidia-ml1", "nvidia-smi", "nvidia-persistenced"]


def _play(*extra_vars, check=False):
    args = ["--check", "--diff"] if check else []
    return scenario.playbook("converge.yml", *args, *scenario.extra_vars(*extra_vars), timeout=600)


def _dpkg(host):
    out = host.check_output("dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n'")
    return {l.split("\t")[0]: (l.split("\t")[1], l.split("\t")[2].strip()) for l in out.splitlines()}


def test_packages_pinned_and_held(host):
    pkgs = _dpkg(host)
    for name in PACKAGES:
        assert name in pkgs, name
        assert pkgs[name][1] == "hi", "%s is %s, not held" % (name, pkgs[name][1])
    for name in PACKAGES[:-1]:  # nvidia-persistenced has its own version
        assert pkgs[name][0].startswith(DRIVER + "-"), (name, pkgs[name][0])
    # The dependencies came at the pinned version too (the apt preference), not the newest.
    assert pkgs["nvidia-alternative"][0].startswith(DRIVER + "-") and pkgs["nvidia-alternative"][1] == "hi"
    pref = host.file("/etc/apt/preferences.d/llmfleet-nvidia-driver.pref").content_string
    assert "Pin: version %s-*" % DRIVER in pref and "Pin-Priority: 1001" in pref
    # Recommends stayed out: no X/GL stack.
    assert "xserver-xorg-video-nvidia" not in pkgs and "nvidia-driver" not in pkgs
    # Headers for DKMS, held like the kernel (so ubuntu_base finds nothing left to hold).
    assert pkgs["linux-headers-amd64"][1] == "hi"


def test_older_branch_released_and_removed(host):
    # prepare.yml installed and held a TEST FIXTURE libnvidia-compute-570 (a host moving from 570).
    assert "libnvidia-compute-570" not in _dpkg(host) or _dpkg(host)["libnvidia-compute-570"][1][1] != "i"


def test_dkms_really_built_the_module_for_debians_kernel(host):
    status = host.check_output("dkms status")
    line = [l for l in status.splitlines() if l.startswith("nvidia-current/%s," % DRIVER)]
    assert line and line[0].endswith(": installed"), status
    kernel = line[0].split(",")[1].strip()
    ko = host.run("ls /lib/modules/%s/updates/dkms/" % kernel)
    assert ko.rc == 0 and "nvidia-current.ko" in ko.stdout, ko.stdout + ko.stderr
    # ... and not for the running kernel, whose headers do not exist here.
    assert host.check_output("uname -r") not in status


def test_hold_refuses_removal(host):
    # A real apt run (a simulation does not enforce holds): it must refuse.
    run = host.run("apt-get remove -y nvidia-smi")
    assert run.rc != 0 and "Held packages were changed" in run.stdout + run.stderr, run.stdout + run.stderr
    assert _dpkg(host)["nvidia-smi"][1] == "hi"


def test_nouveau_blacklisted(host):
    conf = host.file("/etc/modprobe.d/llmfleet-blacklist-nouveau.conf")
    assert conf.exists and conf.mode == 0o644
    assert "blacklist nouveau" in conf.content_string and "options nouveau modeset=0" in conf.content_string


def test_persistenced_enabled_and_skipped_without_a_module(host):
    assert host.service("nvidia-persistenced").is_enabled
    host.run_expect([0], "systemctl restart nvidia-persistenced.service")
    show = host.check_output("systemctl show -p ConditionResult -p ActiveState -p Result nvidia-persistenced.service")
    assert "ConditionResult=no" in show and "Result=success" in show, show
    assert host.check_output("systemctl is-system-running || true") == "running"
    # No GPU: nothing may be loaded at boot either.
    assert not host.file("/etc/modules-load.d/llmfleet-nvidia.conf").exists


# `host` keeps these in file order with the host tests (the last one moves the pin).
def test_role_says_what_it_could_not_do_here(host):
    """A second converge (the idempotence run): the report, and changed=0."""
    run = _play()
    assert run.returncode == 0, run.stdout + run.stderr
    out = " ".join(run.stdout.split())
    assert "has no NVIDIA GPU, so no module can load and the coherence gate is not checked" in out
    assert "Module for the running kernel" in out and ": none." in out
    assert "proprietary module: GPU architecture unknown (no NVML yet); Debian's open module package lags" in out
    assert "installed for 6.1." in out  # the DKMS build, reported by kernel
    assert "changed=0" in out and not re.search(r"changed=[1-9]", out)


def test_check_diff_on_the_converged_host_is_silent(host):
    run = _play(check=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "changed=0" in run.stdout and "failed=0" in run.stdout


def test_masked_persistenced_is_unmasked_and_enabled(host):
    host.run_expect([0], "systemctl mask nvidia-persistenced.service")
    run = _play()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "changed=1" in run.stdout, run.stdout[-2000:]
    assert host.check_output("systemctl is-enabled nvidia-persistenced.service || true") == "enabled"


@pytest.mark.parametrize("extra, named", [
    # Choices are refused by the role's argument specs, before any task.
    ('{"nvidia_driver_source": "nvidia"}',
     "value of nvidia_driver_source must be one of: auto, ubuntu, cuda_repo, debian, offline, got: nvidia"),
    ('{"nvidia_driver_reboot": "sometimes"}', "value of nvidia_driver_reboot must be one of: auto, never, always, got: sometimes"),
    # The rest by the role's own checks, which end with "Nothing was changed."
    ('{"nvidia_driver_branch": "580", "nvidia_driver_version": ""}', "Debian 12 has one branch, 535"),
    ('{"nvidia_driver_branch": "580"}', "nvidia_driver_version an upstream version like \"580.95.05\" in that branch (got '535.309.01')"),
    ('{"nvidia_driver_version": "580.95.05"}', "Debian 12 has one branch, 535"),
    ('{"nvidia_driver_branch": "58"}', "nvidia_driver_branch three digits like \"580\" (got '58')"),
    ('{"nvidia_driver_source": "ubuntu"}', "debian only on Debian and ubuntu/cuda_repo only on Ubuntu"),
    ('{"nvidia_driver_fabric_manager": true}', "Debian has none"),
])
def test_bad_input_is_refused_before_any_change(host, extra, named):
    before = host.check_output("dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' 'nvidia-*' | md5sum")
    run = _play(extra)
    out = scenario.flat(run)
    assert run.returncode != 0
    assert named in out, out[-3000:]
    assert "value of " in named or "Nothing was changed" in out
    assert "changed=0" in out
    after = host.check_output("dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' 'nvidia-*' | md5sum")
    assert before == after
