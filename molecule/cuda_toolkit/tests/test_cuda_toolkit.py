"""cuda_toolkit on a Debian 12 instance, seen from outside: Debian's nvidia-cuda-toolkit installed
and held, nvcc 11.8 for a login shell and able to compile, CUDA_HOME from /etc/profile.d, the
libraries found by the linker, the published fact, a mismatching nvcc refused with what it
reported, and bad input refused before any change."""
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

PROFILE = "/etc/profile.d/llmfleet-cuda.sh"
LDCONF = "/etc/ld.so.conf.d/llmfleet-cuda.conf"
NVCC = "/usr/bin/nvcc"


def _play(playbook, *args):
    run = scenario.playbook(playbook, *args, timeout=600)
    return run, scenario.flat(run)


def _state(host):
    """What a run must not change: the profile file and the package's dpkg state."""
    return (host.check_output("md5sum %s" % PROFILE),
            host.check_output("dpkg -l nvidia-cuda-toolkit | tail -n 1"))


def test_toolkit_installed_and_held(host):
    line = host.check_output("dpkg -l nvidia-cuda-toolkit | tail -n 1").split()
    assert line[0] == "hi" and line[2].startswith("11.8."), line
    assert "nvidia-cuda-toolkit" in host.check_output("apt-mark showhold").split()
    # A held package is not removed without force.
    assert host.run("apt-get -s -qq remove nvidia-cuda-toolkit").rc != 0
    # Installed without recommends (no profiler GUIs, no nsight), with gcc and g++ for nvcc.
    assert host.package("gcc").is_installed and host.package("g++").is_installed
    assert not host.package("nsight-systems").is_installed


def test_login_shell_finds_nvcc_11_8_and_cuda_home(host):
    out = host.check_output("bash -lc 'command -v nvcc; nvcc --version; echo CUDA_HOME=$CUDA_HOME'")
    assert out.splitlines()[0] == NVCC
    assert "release 11.8, V11.8.89" in out
    assert "CUDA_HOME=/usr" in out.splitlines()


def test_nvcc_compiles_links_and_the_runtime_loads(host):
    # Under /var/tmp: the instance's /tmp is a noexec tmpfs.
    host.run_expect([0], "printf '%s\\n' '#include <cstdio>' '__global__ void k(int *x) { *x = 1; }'"
                         " 'int main() { int *d; cudaError_t e = cudaMalloc(&d, 4);'"
                         " '  printf(\"cudaMalloc: %s\\n\", cudaGetErrorString(e)); return 0; }'"
                         " > /var/tmp/llmfleet-k.cu")
    build = host.run("bash -lc 'nvcc -cudart shared -o /var/tmp/llmfleet-k /var/tmp/llmfleet-k.cu'")
    assert build.rc == 0, build.stderr
    # The CUDA runtime is found through the linker's default path (no ld.so.conf.d file needed).
    # (/lib is /usr/lib on Debian 12's merged /usr.)
    ldd = host.check_output("ldd /var/tmp/llmfleet-k")
    assert re.search(r"libcudart\.so\.11\.0 => (/usr)?/lib/x86_64-linux-gnu/libcudart\.so\.11\.0 ", ldd), ldd
    # It runs: the runtime loads and answers; without a GPU or driver the call returns an error.
    out = host.check_output("/var/tmp/llmfleet-k")
    assert out.startswith("cudaMalloc: ") and out != "cudaMalloc: no error", out


def test_environment_files_as_documented(host):
    profile = host.file(PROFILE)
    assert profile.mode == 0o644 and profile.user == "root" and profile.group == "root"
    lines = [l for l in profile.content_string.splitlines() if l and not l.startswith("#")]
    # nvcc is /usr/bin/nvcc on Debian: no PATH change, only CUDA_HOME.
    assert lines == ["CUDA_HOME=/usr", "export CUDA_HOME"]
    host.run_expect([0], "sh -n %s" % PROFILE)
    # Debian's libraries are in the multiarch directory the linker already searches.
    assert not host.file(LDCONF).exists
    assert "libcudart.so.11.0 " in host.check_output("ldconfig -p")


def test_fact_published_for_later_roles():
    run, out = _play("fact.yml", "--tags", "cuda_toolkit:verify")
    assert run.returncode == 0, out
    assert "cuda_toolkit: /usr/bin/nvcc reports release 11.8, the pinned cuda_toolkit_version." in out
    assert "cuda_toolkit_nvcc_version=11.8" in out
    assert "changed=0" in out


def test_nvcc_reporting_another_release_is_refused(host):
    """The one nvcc Debian has is 11.8; a stand-in script at its path plays a mismatching one."""
    host.run_expect([0], "cp -p %s /tmp/nvcc.orig" % NVCC)
    try:
        host.run_expect([0], "printf '#!/bin/sh\\necho \"Cuda compilation tools, release 12.4, V12.4.131\"\\n'"
                             " > %s" % NVCC)
        run, out = _play("converge.yml")
    finally:
        host.run_expect([0], "cp -p /tmp/nvcc.orig %s" % NVCC)
    assert run.returncode != 0, out
    assert "cuda_toolkit: /usr/bin/nvcc reports release 12.4, but cuda_toolkit_version pins 11.8" in out
    assert "dpkg -S /usr/bin/nvcc" in out
    assert "changed=0" in out
    assert host.check_output("dpkg --verify nvidia-cuda-toolkit") == ""


@pytest.mark.parametrize("extra, named", [
    ('{"cuda_toolkit_version": "12"}', 'cuda_toolkit_version: "12" is not a toolkit release'),
    ('{"cuda_toolkit_version": 12.8}', 'cuda_toolkit_version: "12.8" is not a toolkit release'),
    ('{"cuda_toolkit_version": "12.8"}', "Debian 12 only ships CUDA 11.8 (nvidia-cuda-toolkit)"),
    ('{"cuda_toolkit_source": "nvidia"}', "cuda_toolkit_source"),
    ('{"cuda_toolkit_manage_environment": "sometimes"}', "cuda_toolkit_manage_environment"),
    ('{"cuda_toolkit_source": "cuda_repo", "llmfleet_offline": true}', "but llmfleet_offline is true"),
])
def test_bad_input_fails_before_any_change(host, extra, named):
    before = _state(host)
    run, out = _play("converge.yml", "-e", extra)
    assert run.returncode != 0, out
    assert named in out, out
    assert "changed=0" in out, out
    assert _state(host) == before
