"""drift.yml's recorder and report (plugins/callback/drift.py, plugins/filter/drift.py,
playbooks/tasks/drift_report.yml), run by ansible-playbook on the controller against local hosts
whose "desired state" is a file in a temporary directory: what is reported, what is written, the
exit status. Nothing outside tmp_path changes."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = """- hosts: fleet
  gather_facts: false
  tasks:
    - name: Desired config
      ansible.builtin.copy:
        content: "setting = desired\\n"
        dest: "{{ state_dir }}/{{ inventory_hostname }}.conf"
        mode: "0644"
      notify: Restart the service
    - name: Desired files
      ansible.builtin.copy:
        content: "{{ item }}\\n"
        dest: "{{ state_dir }}/{{ inventory_hostname }}-{{ item }}"
        mode: "0644"
      loop: [a, b]
    - name: A read that runs in check mode too
      ansible.builtin.command: "true"
      changed_when: false
      check_mode: false
    - name: A step that fails on one host
      ansible.builtin.fail:
        msg: "the coherence gate refused"
      when: inventory_hostname == 'broken'
  handlers:
    - name: Restart the service
      ansible.builtin.debug:
        msg: restart
      changed_when: true

- name: Write the drift report
  hosts: localhost
  gather_facts: false
  vars:
    __dir: "{{ report_dir }}"
  tasks:
    - ansible.builtin.import_tasks: %(root)s/playbooks/tasks/drift_report.yml
"""


def run(tmp_path, hosts, args=("--check", "--diff"), recorder=True, all_vars=None):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (tmp_path / "pb.yml").write_text(PLAYBOOK % {"root": ROOT})
    inv = {"fleet": {"hosts": {}, "vars": {"state_dir": str(state)}},
           "all": {"vars": dict({"report_dir": str(tmp_path / "reports")}, **(all_vars or {}))}}
    for name, extra in hosts.items():
        inv["fleet"]["hosts"][name] = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable}, **extra)
    (tmp_path / "inv.json").write_text(json.dumps(inv))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               # Without the recorder: another aggregate callback in its place (the setting cannot be empty).
               ANSIBLE_CALLBACKS_ENABLED="llmfleet.deepseek.drift" if recorder else "ansible.builtin.tree",
               ANSIBLE_CALLBACK_TREE_DIR=str(tmp_path / "tree"),
               ANSIBLE_STRATEGY="linear")
    env.pop("ANSIBLE_STRATEGY_PLUGINS", None)
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([ansible, "-i", str(tmp_path / "inv.json"), str(tmp_path / "pb.yml")] + list(args),
                          capture_output=True, text=True, env=env, timeout=180, check=False)
    out = proc.stdout + proc.stderr
    latest = tmp_path / "reports" / "latest.json"
    report = json.loads(latest.read_text()) if latest.exists() else None
    return proc.returncode, out, report


def converge(tmp_path, *names):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    for name in names:
        (state / (name + ".conf")).write_text("setting = desired\n")
        for item in "ab":
            (state / ("%s-%s" % (name, item))).write_text(item + "\n")
            os.chmod(state / ("%s-%s" % (name, item)), 0o644)
        os.chmod(state / (name + ".conf"), 0o644)


def test_a_clean_fleet_reports_no_drift_and_exits_0(tmp_path):
    converge(tmp_path, "h1", "h2")
    rc, out, report = run(tmp_path, {"h1": {}, "h2": {}})
    assert rc == 0, out
    assert report["clean"] is True
    assert report["totals"] == {"hosts": 2, "drifted": 0, "failed": 0, "changes": 0}
    assert [h["host"] for h in report["hosts"]] == ["h1", "h2"]
    assert "No drift on 2 hosts" in out


def test_drift_is_reported_per_host_with_before_and_after_and_the_run_fails(tmp_path):
    converge(tmp_path, "h1", "h2")
    (tmp_path / "state" / "h2.conf").write_text("setting = changed by hand\n")
    os.unlink(tmp_path / "state" / "h2-b")
    rc, out, report = run(tmp_path, {"h1": {}, "h2": {}})
    assert rc == 2, out
    assert report is not None, out
    assert report["clean"] is False and report["drifted_hosts"] == ["h2"]
    h1, h2 = report["hosts"]
    assert h1["drift"] == 0 and h2["drift"] == 2
    conf = [c for c in h2["changes"] if c["task"] == "Desired config"][0]
    assert conf["action"] == "ansible.builtin.copy"
    assert conf["diffs"][0]["before"] == "setting = changed by hand\n"
    assert conf["diffs"][0]["after"] == "setting = desired\n"
    assert "-setting = changed by hand\n+setting = desired" in conf["diffs"][0]["diff"]
    item = [c for c in h2["changes"] if c["task"] == "Desired files"][0]
    assert item["item"] == "b"
    # The handler the change would notify is listed, not counted.
    assert [h["task"] for h in h2["handlers"]] == ["Restart the service"]
    assert "Drift: h2;" in " ".join(out.split())
    # Nothing was changed: the check left the hand-made drift in place.
    assert (tmp_path / "state" / "h2.conf").read_text() == "setting = changed by hand\n"
    assert not (tmp_path / "state" / "h2-b").exists()
    html = (tmp_path / "reports" / "latest.html").read_text()
    assert "<td><a href=\"#host-2\">h2</a></td>" in html and "changed by hand" in html
    assert os.path.realpath(tmp_path / "reports" / "latest.html").endswith(".html")
    # The same run as metrics, for Prometheus (promtool accepts them).
    prom = (tmp_path / "reports" / "llmfleet_drift.prom").read_text()
    assert 'llmfleet_drift_host_changes{drift_host="h1"} 0\n' in prom
    assert 'llmfleet_drift_host_changes{drift_host="h2"} 2\n' in prom
    assert 'llmfleet_drift_host_failed{drift_host="h2"} 0\n' in prom
    stamp = [ln for ln in prom.splitlines() if ln.startswith("llmfleet_drift_last_run_timestamp_seconds ")]
    assert len(stamp) == 1 and abs(int(stamp[0].split()[1]) - time.time()) < 300
    promtool = os.path.join(ROOT, ".cache", "tools", "bin", "promtool")
    check = subprocess.run([str(promtool), "check", "metrics"], input=prom, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_host_that_fails_or_cannot_be_reached_is_not_clean(tmp_path):
    converge(tmp_path, "h1", "broken")
    # Port 9 on loopback: refused at once, no traffic leaves this machine.
    rc, out, report = run(tmp_path, {"h1": {}, "broken": {},
                                     "gone": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9}})
    assert rc != 0, out
    rows = {h["host"]: h for h in report["hosts"]}
    assert rows["h1"]["status"] == "ok"
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["failures"][0]["msg"] == "the coherence gate refused"
    assert rows["gone"]["status"] == "unreachable"
    assert report["clean"] is False and sorted(report["failed_hosts"]) == ["broken", "gone"]


def test_html_escapes_what_hosts_hold(tmp_path):
    converge(tmp_path, "h1")
    (tmp_path / "state" / "h1.conf").write_text("<script>alert(1)</script>\n")
    rc, out, report = run(tmp_path, {"h1": {}})
    assert rc == 2, out
    html = (tmp_path / "reports" / "latest.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_without_the_recorder_the_report_refuses_instead_of_saying_clean(tmp_path):
    converge(tmp_path, "h1")
    (tmp_path / "state" / "h1.conf").write_text("drifted\n")
    rc, out, report = run(tmp_path, {"h1": {}}, recorder=False)
    assert rc == 2 and report is None, out
    assert "No drift record" in out


def test_outside_check_mode_nothing_is_recorded_and_the_report_refuses(tmp_path):
    converge(tmp_path, "h1")
    rc, out, report = run(tmp_path, {"h1": {}}, args=("--diff",))
    assert rc == 2 and report is None, out
    assert "No drift record" in out


def test_the_metrics_reach_the_monitoring_servers_and_an_unreachable_one_is_named(tmp_path):
    converge(tmp_path, "h1", "h2")
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    rc, out, report = run(tmp_path, {"h1": {}, "h2": {}, "mon": {"state_dir": str(tmp_path / "mon-state")},
                                     # Port 9 on loopback: refused at once, nothing leaves this machine.
                                     "mon-down": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                                                  "ansible_port": 9, "state_dir": str(tmp_path / "x")}},
                          all_vars={"llmfleet_drift_metrics_hosts": ["mon", "mon-down"],
                                    "llmfleet_drift_metrics_dir": str(textfile)})
    assert report is not None, out
    prom = (textfile / "llmfleet_drift.prom").read_text()
    assert prom == (tmp_path / "reports" / "llmfleet_drift.prom").read_text()
    assert 'llmfleet_drift_host_failed{drift_host="mon-down"} 1' in prom
    assert "drift metrics not written on mon-down" in out
    assert "drift metrics not written on mon:" not in out
