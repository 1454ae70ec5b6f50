"""What the monitoring role adds to the offline bundle (tasks/bundle.yml, run by bundle.yml on
the builder): the packages of each host's part, and the DCGM exporter image where it runs."""
import json
import os
import subprocess
import sys

import yaml

from conftest import INVENTORY, ROOT

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: monitoring
        tasks_from: bundle.yml
    - ansible.builtin.copy:
        content: "{{ {'apt': llmfleet_bundle_apt, 'images': llmfleet_bundle_images} | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
"""


def test_bundle_lists_the_packages_and_the_image(tmp_path):
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(INVENTORY))
    image = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04@sha256:" + "a" * 64
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.default", ANSIBLE_STRATEGY="linear",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
           str(tmp_path / "pb.yml"), "-e", json.dumps({"out_dir": str(tmp_path), "monitoring_dcgm_exporter_image": image})]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    got = {h: json.loads((tmp_path / (h + ".json")).read_text()) for h in ("node-1", "node-2", "mon-1")}
    assert got["node-1"]["apt"] == ["prometheus-node-exporter", "prometheus-nginx-exporter", "mtail"]
    assert got["node-2"]["apt"] == ["prometheus-node-exporter"]  # no edge there
    assert got["mon-1"]["apt"] == ["prometheus-node-exporter", "prometheus"]
    assert got["node-1"]["images"] == [{"ref": image, "id": ""}] == got["node-2"]["images"]
    assert got["mon-1"]["images"] == []
