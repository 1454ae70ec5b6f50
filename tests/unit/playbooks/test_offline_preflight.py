"""site.yml's offline preflight (playbooks/tasks/offline_preflight.yml), run by ansible-playbook
on the controller against local hosts: what it names, what it lets through. Nothing is changed
on this machine (the play only asserts)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = """- hosts: all
  gather_facts: false
  vars_files: [%(root)s/playbooks/vars/site.yml]
  roles: [llmfleet.deepseek.fleet_defaults]
  tasks:
    - ansible.builtin.import_tasks: %(root)s/playbooks/tasks/offline_preflight.yml
"""


def preflight(tmp_path, hostvars, inventory=None):
    (tmp_path / "pb.yml").write_text(PLAYBOOK % {"root": ROOT})
    if inventory is None:
        host = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "llmfleet_offline": True}, **hostvars)
        (tmp_path / "inv.json").write_text(json.dumps({"all": {"hosts": {"h1": host}}}))
        inventory = str(tmp_path / "inv.json")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([ansible, "-i", inventory, str(tmp_path / "pb.yml")], capture_output=True, text=True,
                         env=env, timeout=120, check=False)
    return run.returncode, " ".join((run.stdout + run.stderr).split())


def test_a_clean_offline_inventory_passes(tmp_path):
    rc, out = preflight(tmp_path, {"offline_repo_src": "/mnt/bundle", "gpu_tuning_wheelhouse": "/srv/w",
                                   "trtllm_service_image": "nvcr.io/nvidia/tensorrt-llm/release@sha256:" + "0" * 64,
                                   "llmfleet_proxy_env": {"http_proxy": ""}})
    assert rc == 0, out


def test_every_setting_that_reaches_outside_is_named(tmp_path):
    rc, out = preflight(tmp_path, {
        "ubuntu_base_apt_mirror": "http://archive.ubuntu.com/ubuntu",
        "llmfleet_proxy_env": {"https_proxy": "http://proxy.example:3128"},
        "trtllm_service_model_source": "http",
        "trtllm_service_model_src": "https://huggingface.co/deepseek-ai/DeepSeek-R1",
        "nvidia_container_toolkit_source": "nvidia_repo",
        "cuda_toolkit_source": "cuda_repo",
        "unrelated_variable": "https://not.ours.example/",
        "offline_repo_src": "file:///mnt/bundle",
    })
    assert rc != 0
    assert "h1: llmfleet_offline is true, but 5 setting(s) would reach outside the site:" in out
    for named in ("ubuntu_base_apt_mirror http://archive.ubuntu.com/ubuntu",
                  "llmfleet_proxy_env http://proxy.example:3128",
                  "trtllm_service_model_src https://huggingface.co/deepseek-ai/DeepSeek-R1",
                  "nvidia_container_toolkit_source nvidia_repo (NVIDIA's repository",
                  "cuda_toolkit_source cuda_repo (NVIDIA's CUDA repository"):
        assert named in out
    assert "not.ours.example" not in out and "file:///mnt/bundle" not in out
    assert "Nothing was changed." in out


def test_a_mirror_inside_the_site_is_allowed_by_its_prefix(tmp_path):
    rc, out = preflight(tmp_path, {
        "trtllm_service_model_src": "https://models.site.internal/deepseek-r1/rev",
        "trtllm_service_pip_index_url": "https://pypi.site.internal.evil.example/simple",
        "llmfleet_offline_allowed_urls": ["https://models.site.internal", "https://pypi.site.internal"],
    })
    assert rc != 0
    assert "1 setting(s)" in out and "trtllm_service_pip_index_url https://pypi.site.internal.evil.example/simple" in out
    assert "models.site.internal/deepseek-r1" not in out


@pytest.mark.parametrize("host", ["gpu-c01.site.internal", "gpu-c02.site.internal"])
def test_the_shipped_offline_inventory_passes(tmp_path, host):
    """inventories/offline as shipped: nothing in it reaches outside (the builder is not checked:
    it is not in llmfleet, and bundle.yml treats it as connected)."""
    inventory = os.path.join(ROOT, "inventories", "offline")
    (tmp_path / "pb.yml").write_text(PLAYBOOK.replace("hosts: all", "hosts: %s" % host) % {"root": ROOT})
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([ansible, "-i", inventory, "-e", "ansible_connection=local",
                          "-e", "ansible_python_interpreter=" + sys.executable, str(tmp_path / "pb.yml")],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok=1" in run.stdout
