"""site.yml says once which role runs where and when: llmfleet_site_role_list (playbooks/vars/site.yml).
Its plays, its first play (whose inputs it judges), the report and bundle.yml read that list; these
tests hold site.yml's plays and the list to each other, and run the list's derived facts through
ansible-playbook against local hosts (no task reaches a host)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
SITE = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
VARS = yaml.safe_load((ROOT / "playbooks" / "vars" / "site.yml").read_text())
LIST = VARS["llmfleet_site_role_list"]
SHARED = {"role": "llmfleet.deepseek.fleet_defaults"}
# (play hosts, role entry) for every role of site.yml's plays, in order (fleet_defaults, which only
# gives the shared settings their defaults, aside).
PLAYED = [(play["hosts"], entry) for play in SITE for entry in play.get("roles", []) if entry != SHARED]


def test_the_plays_run_the_roles_of_the_list_in_its_order():
    assert [entry["role"] for _hosts, entry in PLAYED] == [item["role"] for item in LIST]


def test_each_role_runs_in_the_play_of_its_group():
    groups = dict((item["role"], item["group"]) for item in LIST)
    assert [(entry["role"], hosts) for hosts, entry in PLAYED] == [(entry["role"], groups[entry["role"]]) for _h, entry in PLAYED]


def test_each_role_is_tagged_with_its_name_and_always_only_where_the_list_says():
    always = dict((item["role"], item.get("always", False)) for item in LIST)
    for _hosts, entry in PLAYED:
        assert entry["tags"][0] == entry["role"], entry
        assert ("always" in entry["tags"]) == always[entry["role"]], entry


def test_each_role_runs_where_the_list_puts_it_and_no_play_restates_a_switch():
    switches = [item["switch"] for item in LIST if "switch" in item]
    for _hosts, entry in PLAYED:
        assert entry["when"].startswith("'%s' in llmfleet_site_host_roles" % entry["role"]), entry
        assert not [s for s in switches if s in entry["when"]], entry
    for play in SITE:
        if play.get("roles"):
            assert play.get("vars_files") == ["vars/site.yml"], play["name"]


def test_each_switch_has_its_one_default_in_fleet_defaults_which_the_task_only_plays_read():
    shared = yaml.safe_load((ROOT / "roles" / "fleet_defaults" / "defaults" / "main.yml").read_text())
    for item in LIST:
        assert "switch" not in item or isinstance(shared.get(item["switch"]), bool), item
        assert "default" not in item, item
    # A play of tasks only lists fleet_defaults; the other plays' roles depend on it.
    for play in SITE:
        assert play.get("roles"), play["name"]
        assert (SHARED in play["roles"]) == all(entry == SHARED for entry in play["roles"]), play["name"]


def test_each_role_of_the_list_has_its_input_check():
    for item in LIST:
        assert (ROOT / "roles" / item["role"] / "tasks" / item.get("check", "validate_inputs.yml")).is_file(), item


PLAY = """- hosts: %(hosts)s
  gather_facts: false
  vars_files: [%(root)s/playbooks/vars/site.yml]
  vars: %(vars)s
  roles: [llmfleet.deepseek.fleet_defaults]
  tasks:
    - name: Show the facts site.yml derives from its list
      ansible.builtin.debug:
        msg: "{{ {'roles': llmfleet_site_host_roles, 'gpu_steps': llmfleet_site_host_gpu_steps,
                  'by_group': llmfleet_site_roles, 'always': llmfleet_site_always_roles,
                  'checks': llmfleet_site_input_checks, 'pattern': llmfleet_site_setting_pattern} | to_json }}"
"""
# The second play sets llmfleet_offline false as bundle.yml does.
PLAYBOOK = PLAY % {"hosts": "all:!play_vars", "vars": "{}", "root": "%(root)s"} + PLAY % {
    "hosts": "play_vars", "vars": "{llmfleet_offline: false}", "root": "%(root)s"}
HOSTS = {
    "gpu": ("gpu_nodes", {}),
    "plain": ("llmfleet", {}),
    "mon": ("llmfleet", {"llmfleet_monitoring": True}),
    "no-wall": ("gpu_nodes", {"llmfleet_firewall": None, "llmfleet_cuda_toolkit": "yes", "llmfleet_container_toolkit": "no"}),
    "offline": ("gpu_nodes", {"llmfleet_offline": True}),
    "offline-play": ("play_vars", {"llmfleet_offline": True}),
}


def facts(tmp_path, *args):
    (tmp_path / "pb.yml").write_text(PLAYBOOK % {"root": ROOT})
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    groups = {}
    for host, (group, hostvars) in HOSTS.items():
        groups.setdefault(group, {"hosts": {}})["hosts"][host] = dict(local, **hostvars)
    groups["gpu_nodes"]["children"] = {"play_vars": groups.pop("play_vars")}
    groups["llmfleet"]["children"] = {"gpu_nodes": groups.pop("gpu_nodes")}
    (tmp_path / "inv.json").write_text(json.dumps(groups))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run([ansible, "-i", str(tmp_path / "inv.json"), str(tmp_path / "pb.yml")] + list(args),
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plays = json.loads(done.stdout)["plays"]
    return dict((host, json.loads(result["msg"])) for play in plays for host, result in play["tasks"][0]["hosts"].items())


GPU_ROLES = ["ubuntu_base", "firewall", "nvidia_driver", "nvidia_container_toolkit", "gpu_tuning", "trtllm_service", "nginx_tls"]


def test_the_roles_of_each_host_follow_its_groups_and_switches(tmp_path):
    got = facts(tmp_path)
    assert got["gpu"]["roles"] == GPU_ROLES
    assert got["gpu"]["gpu_steps"] == ["nvidia_driver: module load, reboot and coherence gate", "nvidia_container_toolkit: CDI spec",
                                       "gpu_tuning: GPU settings through NVML"]
    assert got["plain"]["roles"] == ["ubuntu_base", "firewall"] and got["plain"]["gpu_steps"] == []
    assert got["mon"]["roles"] == ["ubuntu_base", "firewall", "monitoring"] and got["mon"]["gpu_steps"] == ["monitoring: DCGM exporter"]
    # A switch is read as | bool reads it; one set to null is off (as `null | default(true) | bool` always was).
    assert got["no-wall"]["roles"] == ["ubuntu_base", "nvidia_driver", "cuda_toolkit", "gpu_tuning", "trtllm_service", "nginx_tls"]
    assert got["offline"]["roles"] == ["offline_repo"] + GPU_ROLES
    # The play's vars win over the inventory (bundle.yml builds with llmfleet_offline false).
    assert got["offline-play"]["roles"] == GPU_ROLES
    assert got["offline"]["by_group"] == {"llmfleet": ["offline_repo", "ubuntu_base", "firewall"], "gpu_nodes": GPU_ROLES[2:]}
    assert got["gpu"]["always"] == ["offline_repo"]
    assert got["gpu"]["checks"]["firewall"] == "validate.yml" and got["gpu"]["checks"]["trtllm_service"] == "validate_inputs.yml"
    assert got["gpu"]["pattern"] == ("^(llmfleet|offline_repo|ubuntu_base|firewall|nvidia_driver|cuda_toolkit|nvidia_container_toolkit"
                                     "|gpu_tuning|trtllm_service|nginx_tls|monitoring)_")


@pytest.mark.parametrize("extra, host, expected", [
    ("llmfleet_edge=false", "gpu", GPU_ROLES[:-1]),
    ('{"llmfleet_model_service": false, "llmfleet_firewall": false}', "gpu", ["ubuntu_base"] + GPU_ROLES[2:5] + ["nginx_tls"]),
])
def test_extra_vars_switch_roles_for_every_host(tmp_path, extra, host, expected):
    assert facts(tmp_path, "-e", extra)[host]["roles"] == expected
