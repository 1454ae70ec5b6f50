"""iptables_rollback: the firewall's rollback watcher, in-process with a FAKE clock, and as the host
runs it (`python -c <its source>`, without the collection on the path). The restore command is a
stand-in that copies its stdin to a file; the real iptables-restore is in
tests/unit/plugins/modules/test_iptables_allowlist.py."""
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import iptables as ipt
from ansible_collections.llmfleet.deepseek.plugins.module_utils import iptables_rollback as rb


class Clock:
    """FAKE clock: sleep() moves it on; records the sleeps."""

    def __init__(self, now=1000.0):
        self.now = now
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def armed(tmp_path):
    """What the module leaves for the watcher: a cookie, one saved transaction (restored by a
    stand-in that copies stdin to restored.txt), one file to put back, one to remove, the spec."""
    base = tmp_path / "run"
    base.mkdir()
    back = base / "restore-1-ipv4"
    back.write_text("*filter\n-F LLMFLEET-INPUT\nCOMMIT\n")
    restored = tmp_path / "restored.txt"
    stand_in = [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())", str(restored)]
    kept, new = tmp_path / "rules.ipv4", tmp_path / "rules.ipv6"
    kept.write_text("the new rules\n")
    new.write_text("a file the change created\n")
    backup = base / "file-1-0"
    backup.write_text("the old rules\n")
    spec = {"restores": [[stand_in, str(back)]], "files": [[str(kept), str(backup)], [str(new), None]],
            "cleanup": [str(back), str(backup)]}
    spec_path = base / "spec-1.json"
    spec_path.write_text(json.dumps(spec))
    cookie = base / "pending-1"
    cookie.write_text("confirm by removing this file within 30 s\n")
    return {"base": base, "cookie": cookie, "marker": base / "rolled-back-1", "spec": spec_path,
            "restored": restored, "kept": kept, "new": new}


def test_a_confirmed_change_is_left_alone_and_the_saved_state_removed(armed):
    clock = Clock()
    os.remove(armed["cookie"])  # the action plugin's confirmation
    assert rb.watch(str(armed["cookie"]), clock.now + 30, str(armed["marker"]), str(armed["spec"]),
                    clock.time, clock.sleep) is False
    assert not armed["restored"].exists() and not armed["marker"].exists()
    assert armed["kept"].read_text() == "the new rules\n" and armed["new"].exists()
    assert os.listdir(armed["base"]) == []


def test_a_confirmation_before_the_deadline_stops_the_watch(armed):
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now >= 1005:
            armed["cookie"].unlink(missing_ok=True)

    assert rb.watch(str(armed["cookie"]), 1030, str(armed["marker"]), str(armed["spec"]), clock.time, sleep) is False
    assert set(clock.sleeps) == {rb.POLL_SECONDS} and 1005 <= clock.now < 1005 + 2 * rb.POLL_SECONDS
    assert not armed["marker"].exists() and os.listdir(armed["base"]) == []


def test_no_confirmation_by_the_deadline_puts_everything_back(armed):
    clock = Clock()
    assert rb.watch(str(armed["cookie"]), clock.now + 1, str(armed["marker"]), str(armed["spec"]),
                    clock.time, clock.sleep) is True
    assert armed["restored"].read_text() == "*filter\n-F LLMFLEET-INPUT\nCOMMIT\n"
    assert armed["kept"].read_text() == "the old rules\n"
    assert not armed["new"].exists()
    assert armed["marker"].read_text() == "rolled back at %d, restore exit codes [0]\n" % clock.now
    # The cookie was taken (a late confirmation's rm fails), the saved state cleaned up; the marker stays.
    assert os.listdir(armed["base"]) == ["rolled-back-1"]


def test_the_restore_exit_codes_are_recorded(armed):
    spec = json.loads(armed["spec"].read_text())
    spec["restores"][0][0] = [sys.executable, "-c", "import sys; sys.exit(4)"]
    armed["spec"].write_text(json.dumps(spec))
    assert rb.watch(str(armed["cookie"]), 0, str(armed["marker"]), str(armed["spec"])) is True
    assert armed["marker"].read_text().endswith(", restore exit codes [4]\n")


def test_the_host_runs_the_source_alone(armed, tmp_path):
    """What the module starts: python -c <source>, with nothing of the collection importable (the
    module's AnsiballZ payload is gone by then)."""
    argv = rb.watcher_argv(sys.executable, str(armed["cookie"]), time.time() + 0.5, str(armed["marker"]),
                           str(armed["spec"]))
    assert argv[1] == "-c" and argv[2] == rb.source() and argv[4].count(".") == 1
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(argv[:1] + ["-I"] + argv[1:], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert armed["marker"].read_text().startswith("rolled back at ")
    assert armed["kept"].read_text() == "the old rules\n"
    assert os.listdir(armed["base"]) == ["rolled-back-1"]


def test_the_source_is_this_file():
    with open(rb.__file__) as handle:
        assert rb.source() == handle.read()


def test_the_restores_wait_for_the_xtables_lock_and_never_flush():
    assert ipt.restore_argv("/usr/sbin/iptables-nft-restore") == \
        ["/usr/sbin/iptables-nft-restore", "-w", str(ipt.XTABLES_LOCK_WAIT), "--noflush"]
    assert ipt.restore_argv("/usr/sbin/ip6tables-legacy-restore", test=True) == \
        ["/usr/sbin/ip6tables-legacy-restore", "-w", str(ipt.XTABLES_LOCK_WAIT), "--test", "--noflush"]


def test_launched_as_a_transient_unit_or_detached():
    argv = ["/usr/bin/python3", "-c", "...", "cookie", "1.000", "marker", "spec"]
    assert rb.launch_argv(argv, "llmfleet-firewall-rollback-1-2", "/usr/bin/systemd-run") == \
        ["/usr/bin/systemd-run", "--quiet", "--collect", "--unit", "llmfleet-firewall-rollback-1-2", "--"] + argv
    detached = rb.launch_argv(argv, "llmfleet-firewall-rollback-1-2")
    assert detached[:4] == ["/bin/sh", "-c", rb.DETACH, "llmfleet-firewall-rollback"] and detached[4:] == argv


def test_detached_start_returns_at_once_and_the_watcher_runs_on(armed):
    argv = rb.watcher_argv(sys.executable, str(armed["cookie"]), time.time() + 3, str(armed["marker"]),
                           str(armed["spec"]))
    subprocess.run(rb.launch_argv(argv, "unused"), check=True, timeout=10)
    assert not armed["marker"].exists()  # the start did not wait for the watcher
    deadline = time.time() + 15
    while time.time() < deadline and not armed["marker"].exists():
        time.sleep(0.1)
    assert armed["marker"].exists(), "the detached watcher did not roll back"
