"""nvidia_runtime_config: merging the NVIDIA runtime into daemon.json and config.toml files (tmp_path)."""
import importlib
import json
import os
import stat
import sys
import tomllib

import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import toml_edit
from ansible_collections.llmfleet.deepseek.plugins.modules import nvidia_runtime_config
from module_runner import run_module

CRI2 = "io.containerd.grpc.v1.cri"
CRI3 = "io.containerd.cri.v1.runtime"
NVIDIA_BIN = "/usr/bin/nvidia-container-runtime"


@pytest.fixture
def run(monkeypatch):
    def _run(args, check=False, diff=False):
        args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        return run_module(monkeypatch, nvidia_runtime_config, args, nvidia_runtime_config.RuntimeConfig)

    return _run


def docker(path, **args):
    return dict(args, engine="docker", path=str(path))


def containerd(path, **args):
    return dict(args, engine="containerd", path=str(path))


# --------------------------------------------------------------------------------------------- docker

USER_DAEMON = """{
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "log-opts": {"max-size": "100m", "max-file": "3"},
  "runtimes": {
    "runc-custom": {"path": "/opt/runc/bin/runc", "runtimeArgs": ["--debug"]}
  },
  "default-runtime": "runc-custom",
  "data-root": "/srv/docker"
}
"""


def test_docker_user_settings_survive_and_nvidia_is_added(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    done = run(docker(conf))
    assert not done.failed, done.result
    assert done.result["changed"] is True
    assert done.result["runtimes"] == ["nvidia", "runc-custom"]
    assert done.result["default_runtime"] == "runc-custom"
    assert done.result["config_version"] is None and done.result["engine"] == "docker"
    assert "backup_file" not in done.result
    written = json.loads(conf.read_text())
    before = json.loads(USER_DAEMON)
    # Every user key, in its original order, with its value; only nvidia was added.
    assert list(written) == list(before)
    for key in before:
        if key != "runtimes":
            assert written[key] == before[key]
    assert written["runtimes"] == {"runc-custom": before["runtimes"]["runc-custom"],
                                   "nvidia": {"path": NVIDIA_BIN, "args": []}}
    assert conf.read_text() == json.dumps(written, indent=4) + "\n"


def test_docker_second_run_changes_nothing_byte_for_byte(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    assert run(docker(conf)).result["changed"] is True
    content, mtime = conf.read_bytes(), conf.stat().st_mtime_ns
    again = run(docker(conf), diff=True)
    assert again.result["changed"] is False
    assert conf.read_bytes() == content and conf.stat().st_mtime_ns == mtime
    assert again.result["diff"]["before"] == again.result["diff"]["after"]


def test_docker_formatting_alone_is_not_a_change(run, tmp_path):
    conf = tmp_path / "daemon.json"
    squeezed = ('{"runtimes":{"nvidia":{"args":[],"path":"/usr/bin/nvidia-container-runtime"}},'
                '"log-level":"warn"}')
    conf.write_text(squeezed)
    done = run(docker(conf))
    assert done.result["changed"] is False and done.result["runtimes"] == ["nvidia"]
    assert conf.read_text() == squeezed


def test_docker_keeps_extra_keys_in_our_entry_and_fixes_its_path(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"runtimes": {"nvidia": {"path": "/old/runtime", "runtimeArgs": ["--x"], "args": ["-v"]}}}))
    done = run(docker(conf))
    assert done.result["changed"] is True
    assert json.loads(conf.read_text()) == {"runtimes": {"nvidia": {"path": NVIDIA_BIN, "runtimeArgs": ["--x"], "args": ["-v"]}}}


@pytest.mark.parametrize("content, why", [
    ('{"storage-driver": "overlay2",}', "is not valid JSON"),
    ('{"log-opts": {"max-size": "10m"}', "is not valid JSON"),
    ('["not", "an", "object"]', "must hold a JSON object at the top, not list"),
    ('{"runtimes": ["nvidia"]}', "'runtimes' must be a JSON object"),
])
def test_docker_unreadable_file_fails_naming_it_and_stays(run, tmp_path, content, why):
    conf = tmp_path / "daemon.json"
    conf.write_text(content)
    done = run(docker(conf))
    assert done.failed
    assert done.result["msg"].startswith(str(conf)) and why in done.result["msg"]
    assert "nothing was changed" in done.result["msg"]
    assert conf.read_text() == content
    assert os.listdir(tmp_path) == ["daemon.json"]


def test_docker_invalid_json_message_carries_the_parser_position(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{\n  "debug": true,\n}\n')
    done = run(docker(conf))
    assert done.failed and "line 3 column 1" in done.result["msg"]


def test_docker_set_default_then_back(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{"debug": true}')
    on = run(docker(conf, set_default=True))
    assert on.result["changed"] is True and on.result["default_runtime"] == "nvidia"
    assert json.loads(conf.read_text()) == {"debug": True, "runtimes": {"nvidia": {"path": NVIDIA_BIN, "args": []}},
                                            "default-runtime": "nvidia"}
    assert run(docker(conf, set_default=True)).result["changed"] is False
    off = run(docker(conf, set_default=False))
    assert off.result["changed"] is True and off.result["default_runtime"] is None
    assert json.loads(conf.read_text()) == {"debug": True, "runtimes": {"nvidia": {"path": NVIDIA_BIN, "args": []}}}


def test_docker_set_default_false_leaves_another_default(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    done = run(docker(conf, set_default=False))
    assert json.loads(conf.read_text())["default-runtime"] == "runc-custom"
    assert done.result["default_runtime"] == "runc-custom"


def test_docker_absent_removes_only_our_entry_and_default(run, tmp_path):
    conf = tmp_path / "daemon.json"
    before = json.loads(USER_DAEMON)
    with_us = dict(before, runtimes=dict(before["runtimes"], nvidia={"path": NVIDIA_BIN, "args": []}))
    with_us["default-runtime"] = "nvidia"
    conf.write_text(json.dumps(with_us))
    done = run(docker(conf, state="absent"))
    assert done.result["changed"] is True
    assert done.result["runtimes"] == ["runc-custom"] and done.result["default_runtime"] is None
    expected = dict(before)
    del expected["default-runtime"]
    assert json.loads(conf.read_text()) == expected
    assert run(docker(conf, state="absent")).result["changed"] is False


def test_docker_absent_drops_the_runtimes_object_it_empties(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{"runtimes": {"nvidia": {"path": "/x", "args": []}}, "debug": false}')
    run(docker(conf, state="absent"))
    assert json.loads(conf.read_text()) == {"debug": False}


def test_docker_absent_on_a_missing_file_creates_nothing(run, tmp_path):
    conf = tmp_path / "docker" / "daemon.json"
    done = run(docker(conf, state="absent"))
    assert done.result["changed"] is False and done.result["runtimes"] == []
    assert not conf.parent.exists()


def test_docker_check_mode_reports_and_writes_nothing(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    done = run(docker(conf, set_default=True, backup=True), check=True, diff=True)
    assert done.result["changed"] is True and done.result["default_runtime"] == "nvidia"
    assert conf.read_text() == USER_DAEMON
    assert os.listdir(tmp_path) == ["daemon.json"]  # no backup, no temporary file
    diff = done.result["diff"]
    assert diff["before"] == USER_DAEMON and diff["before_header"] == diff["after_header"] == str(conf)
    assert json.loads(diff["after"])["runtimes"]["nvidia"] == {"path": NVIDIA_BIN, "args": []}


def test_docker_check_mode_on_a_missing_file(run, tmp_path):
    conf = tmp_path / "etc" / "docker" / "daemon.json"
    done = run(docker(conf), check=True, diff=True)
    assert done.result["changed"] is True and done.result["diff"]["before"] == ""
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("content", [None, "", "  \n\t\n"])
def test_docker_missing_or_blank_file_is_created_with_0644(run, tmp_path, content):
    conf = tmp_path / "etc" / "docker" / "daemon.json"
    if content is not None:
        conf.parent.mkdir(parents=True)
        conf.write_text(content)
    done = run(docker(conf))
    assert done.result["changed"] is True
    assert json.loads(conf.read_text()) == {"runtimes": {"nvidia": {"path": NVIDIA_BIN, "args": []}}}
    if content is None:
        assert stat.S_IMODE(conf.stat().st_mode) == 0o644
        assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o755


def test_docker_existing_mode_is_kept(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text("{}")
    conf.chmod(0o600)
    run(docker(conf))
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert "nvidia" in json.loads(conf.read_text())["runtimes"]


def test_docker_symlink_is_written_through(run, tmp_path):
    real = tmp_path / "managed" / "daemon.json"
    real.parent.mkdir()
    real.write_text('{"debug": true}')
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    run(docker(link))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["runtimes"] == {"nvidia": {"path": NVIDIA_BIN, "args": []}}


def test_docker_backup_keeps_the_old_file(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    done = run(docker(conf, backup=True))
    backup = done.result["backup_file"]
    assert backup.startswith(str(conf) + ".") and open(backup).read() == USER_DAEMON
    assert "backup_file" not in run(docker(conf, backup=True)).result  # unchanged: no new backup


def test_docker_custom_name_and_path(run, tmp_path):
    conf = tmp_path / "daemon.json"
    done = run(docker(conf, runtime_name="nvidia-cdi", runtime_path="/usr/bin/nvidia-container-runtime.cdi", set_default=True))
    assert done.result["runtimes"] == ["nvidia-cdi"] and done.result["default_runtime"] == "nvidia-cdi"
    assert json.loads(conf.read_text())["runtimes"]["nvidia-cdi"]["path"] == "/usr/bin/nvidia-container-runtime.cdi"


def test_validate_failure_replaces_nothing(run, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    validate = "%s -c \"import sys; print('bad config ' + sys.argv[1]); sys.exit(3)\" %%s" % sys.executable
    done = run(docker(conf, validate=validate))
    assert done.failed and done.result["rc"] == 3
    assert done.result["msg"].startswith("validate failed (rc 3) for the new %s, which was not replaced: bad config " % conf)
    assert conf.read_text() == USER_DAEMON
    assert os.listdir(tmp_path) == ["daemon.json"]  # the temporary file is gone too


def test_validate_sees_the_new_content_and_success_writes(run, tmp_path):
    conf = tmp_path / "daemon.json"
    seen = tmp_path / "seen"
    validate = "cp %%s %s" % seen
    done = run(docker(conf, validate=validate))
    assert not done.failed and done.result["changed"] is True
    assert seen.read_text() == conf.read_text()


def test_validate_without_placeholder_is_refused(run, tmp_path):
    conf = tmp_path / "daemon.json"
    done = run(docker(conf, validate="true"))
    assert done.failed and "validate must contain %s" in done.result["msg"]
    assert not conf.exists()


def test_default_path_follows_the_engine(monkeypatch):
    for engine, path in (("docker", "/etc/docker/daemon.json"), ("containerd", "/etc/containerd/config.toml")):
        done = run_module(monkeypatch, nvidia_runtime_config, {"engine": engine, "_ansible_check_mode": True},
                          _NoRead)
        assert done.result["path"] == path


class _NoRead(nvidia_runtime_config.RuntimeConfig):
    """Reads nothing from the real /etc: every file is missing."""

    def read(self, path):
        return None


# --------------------------------------------------------------------------------------------- containerd

CONTAINERD_V2 = """\
# containerd config, hand-tuned for the GPU nodes
version = 2
root = "/var/lib/containerd"  # on the NVMe
oom_score = -999

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"  # pinned

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        # the stock runtime, with systemd cgroups
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true

  # mirrors live in certs.d
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"

  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt/containerd"
"""


def nvidia_table(path=NVIDIA_BIN):
    return {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": path}}


def test_containerd_v2_every_line_survives_and_nvidia_is_added(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    done = run(containerd(conf))
    assert not done.failed, done.result
    assert done.result["changed"] is True and done.result["config_version"] == 2
    assert done.result["runtimes"] == ["nvidia", "runc"] and done.result["default_runtime"] == "runc"
    text = conf.read_text()
    # Every original line is still there, in order, verbatim (comments and indentation included).
    lines = iter(text.splitlines())
    for line in CONTAINERD_V2.splitlines():
        assert line in lines, line
    expected = tomllib.loads(CONTAINERD_V2)
    expected["plugins"][CRI2]["containerd"]["runtimes"]["nvidia"] = nvidia_table()
    assert tomllib.loads(text) == expected
    # The new tables sit with their siblings, indented like them.
    assert ('          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
            '            SystemdCgroup = true\n'
            '\n'
            '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
            '          runtime_type = "io.containerd.runc.v2"\n'
            '\n'
            '          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
            '            BinaryName = "/usr/bin/nvidia-container-runtime"\n'
            '\n'
            '  # mirrors live in certs.d\n') in text
    again = run(containerd(conf))
    assert again.result["changed"] is False and conf.read_text() == text


def test_containerd_existing_table_is_updated_in_place(run, tmp_path):
    conf = tmp_path / "config.toml"
    old = CONTAINERD_V2.replace('  # mirrors live', (
        '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
        '          runtime_type = "io.containerd.runc.v2"\n'
        '          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
        '            BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"  # old toolkit\n'
        '            SystemdCgroup = true\n'
        '\n'
        '  # mirrors live'))
    conf.write_text(old)
    done = run(containerd(conf))
    assert done.result["changed"] is True
    assert conf.read_text() == old.replace('"/usr/local/nvidia/toolkit/nvidia-container-runtime"', '"%s"' % NVIDIA_BIN)
    entry = tomllib.loads(conf.read_text())["plugins"][CRI2]["containerd"]["runtimes"]["nvidia"]
    assert entry["options"] == {"BinaryName": NVIDIA_BIN, "SystemdCgroup": True}


def test_containerd_missing_keys_are_added_inside_existing_tables(run, tmp_path):
    conf = tmp_path / "config.toml"
    old = ('version = 2\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
           '  privileged_without_host_devices = false\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
           '  SystemdCgroup = true\n')
    conf.write_text(old)
    run(containerd(conf))
    assert conf.read_text() == ('version = 2\n'
                                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
                                '  privileged_without_host_devices = false\n'
                                '  runtime_type = "io.containerd.runc.v2"\n'
                                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
                                '  SystemdCgroup = true\n'
                                '  BinaryName = "/usr/bin/nvidia-container-runtime"\n')


def test_containerd_set_default_then_back(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    on = run(containerd(conf, set_default=True))
    assert on.result["default_runtime"] == "nvidia"
    assert '      default_runtime_name = "nvidia"\n' in conf.read_text()
    off = run(containerd(conf, set_default=False))
    assert off.result["changed"] is True and off.result["default_runtime"] is None
    text = conf.read_text()
    assert "default_runtime_name" not in text
    assert "nvidia" in tomllib.loads(text)["plugins"][CRI2]["containerd"]["runtimes"]


def test_containerd_absent_restores_the_original_text(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    run(containerd(conf))
    done = run(containerd(conf, state="absent"))
    assert done.result["changed"] is True and done.result["runtimes"] == ["runc"]
    assert conf.read_text() == CONTAINERD_V2
    assert run(containerd(conf, state="absent")).result["changed"] is False


def test_containerd_absent_removes_a_default_naming_us(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    run(containerd(conf, set_default=True))
    done = run(containerd(conf, state="absent", set_default=True))
    assert done.result["default_runtime"] is None
    data = tomllib.loads(conf.read_text())
    assert "default_runtime_name" not in data["plugins"][CRI2]["containerd"]
    assert set(data["plugins"][CRI2]["containerd"]["runtimes"]) == {"runc"}


def test_containerd_v3_uses_the_cri_runtime_plugin_and_its_quoting(run, tmp_path):
    conf = tmp_path / "config.toml"
    old = ("version = 3\n\n"
           "[plugins.'io.containerd.cri.v1.runtime'.containerd]\n"
           "  default_runtime_name = 'runc'\n\n"
           "  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n"
           "    runtime_type = 'io.containerd.runc.v2'\n")
    conf.write_text(old)
    done = run(containerd(conf, set_default=True))
    assert done.result["config_version"] == 3 and done.result["default_runtime"] == "nvidia"
    text = conf.read_text()
    assert "  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]\n" in text
    data = tomllib.loads(text)
    assert data["plugins"][CRI3]["containerd"]["runtimes"]["nvidia"] == nvidia_table()
    assert data["plugins"][CRI3]["containerd"]["default_runtime_name"] == "nvidia"
    assert CRI2 not in data["plugins"]


@pytest.mark.parametrize("version, plugin", [(2, CRI2), (3, CRI3)])
@pytest.mark.parametrize("content", [None, "", "# nothing yet\n"])
def test_containerd_new_file_gets_the_version_asked_for(run, tmp_path, version, plugin, content):
    conf = tmp_path / "etc" / "containerd" / "config.toml"
    if content is not None:
        conf.parent.mkdir(parents=True)
        conf.write_text(content)
    done = run(containerd(conf, containerd_config_version=version, set_default=True))
    assert done.result["changed"] is True and done.result["config_version"] == version
    text = conf.read_text()
    assert text.startswith((content or "") + "version = %d\n" % version)
    assert tomllib.loads(text) == {"version": version, "plugins": {plugin: {"containerd": {
        "default_runtime_name": "nvidia", "runtimes": {"nvidia": nvidia_table()}}}}}
    assert run(containerd(conf, containerd_config_version=version, set_default=True)).result["changed"] is False


def test_containerd_existing_file_keeps_its_own_version(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text("version = 2\n")
    done = run(containerd(conf, containerd_config_version=3))
    assert done.result["config_version"] == 2
    assert CRI2 in tomllib.loads(conf.read_text())["plugins"]


DOCKER_CONTAINERD_IO = """\
#   Copyright 2018-2022 Docker Inc.

disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
"""


@pytest.mark.parametrize("content, why", [
    (DOCKER_CONTAINERD_IO, "containerd version 1 config (it has no version key)"),
    ("version = 1\n[plugins.cri]\n  sandbox_image = \"x\"\n", "containerd version 1 config (version = 1)"),
    ("version = 4\n", "has version = 4; only containerd config versions 2 and 3 are supported"),
    ('version = "2"\n', "has version = '2'"),
])
def test_containerd_unsupported_versions_fail_clearly(run, tmp_path, content, why):
    conf = tmp_path / "config.toml"
    conf.write_text(content)
    done = run(containerd(conf))
    assert done.failed and done.result["msg"].startswith(str(conf)) and why in done.result["msg"]
    assert "nothing was changed" in done.result["msg"]
    if "version 1" in why:
        assert "containerd config migrate" in done.result["msg"] and "version = 2" in done.result["msg"]
    assert conf.read_text() == content


def test_containerd_warns_when_cri_is_disabled(run, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(nvidia_runtime_config.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    conf = tmp_path / "config.toml"
    conf.write_text('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    done = run(containerd(conf, runtime_path=sys.executable))  # a runtime that exists: no warning about it
    assert done.result["changed"] is True
    assert warnings == ["%s disables the CRI plugin (disabled_plugins); the runtime entry has no effect until it is enabled" % conf]


@pytest.mark.parametrize("content", [
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
     '  runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }\n'),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
     '  options = { BinaryName = "/old" }\n'),
    ('version = 2\nplugins = { "io.containerd.grpc.v1.cri" = { containerd = { snapshotter = "overlayfs" } } }\n'),
])
def test_containerd_inline_tables_fail_without_writing(run, tmp_path, content):
    conf = tmp_path / "config.toml"
    conf.write_text(content)
    done = run(containerd(conf))
    assert done.failed
    assert done.result["msg"].startswith("%s could not be merged as text: " % conf)
    assert "inline tables or dotted keys" in done.result["msg"] and done.result["msg"].endswith("Nothing was changed")
    assert conf.read_text() == content
    assert os.listdir(tmp_path) == ["config.toml"]


def test_containerd_dotted_key_of_ours_is_edited_in_place(run, tmp_path):
    conf = tmp_path / "config.toml"
    old = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
           'runtime_type = "io.containerd.runc.v2"\noptions.BinaryName = "/old"  # note\n')
    conf.write_text(old)
    run(containerd(conf))
    assert conf.read_text() == old.replace('"/old"', '"%s"' % NVIDIA_BIN)


def test_containerd_a_non_table_in_the_way_fails(run, tmp_path):
    conf = tmp_path / "config.toml"
    content = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncontainerd = "nope"\n'
    conf.write_text(content)
    done = run(containerd(conf))
    assert done.failed and 'plugins."io.containerd.grpc.v1.cri".containerd is not a table' in done.result["msg"]
    assert conf.read_text() == content


def test_containerd_invalid_toml_fails_naming_the_file(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text("version = 2\n[plugins\n")
    done = run(containerd(conf))
    assert done.failed and done.result["msg"].startswith("%s is not valid TOML (" % conf)
    assert conf.read_text() == "version = 2\n[plugins\n"


def test_containerd_check_mode_and_diff(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    done = run(containerd(conf), check=True, diff=True)
    assert done.result["changed"] is True
    assert conf.read_text() == CONTAINERD_V2 and os.listdir(tmp_path) == ["config.toml"]
    assert done.result["diff"]["before"] == CONTAINERD_V2
    assert "runtimes.nvidia.options]" in done.result["diff"]["after"]


def test_containerd_validate_failure_replaces_nothing(run, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONTAINERD_V2)
    done = run(containerd(conf, validate="false %s"))
    assert done.failed and done.result["msg"].startswith("validate failed (rc 1)")
    assert conf.read_text() == CONTAINERD_V2 and os.listdir(tmp_path) == ["config.toml"]


def test_containerd_keeps_crlf_and_strings_that_look_like_headers(run, tmp_path):
    conf = tmp_path / "config.toml"
    old = ('version = 2\r\n[plugins."io.containerd.grpc.v1.cri".containerd]\r\n'
           '  note = """\r\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\r\n"""\r\n'
           '  list = [\r\n    "a", # ] not the end\r\n    [1, 2],\r\n  ]')
    conf.write_bytes(old.encode())
    run(containerd(conf))
    new = conf.read_bytes().decode()
    assert new.startswith(old + "\r\n")
    assert "\n" not in new.replace("\r\n", "")
    data = tomllib.loads(new)
    assert data["plugins"][CRI2]["containerd"]["runtimes"]["nvidia"] == nvidia_table()
    assert data["plugins"][CRI2]["containerd"]["list"] == ["a", [1, 2]]


@pytest.fixture
def without_toml(monkeypatch):
    """The module imported on a Python with neither tomllib nor tomli; re-imported normally after."""
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    importlib.reload(toml_edit)
    importlib.reload(nvidia_runtime_config)
    yield
    monkeypatch.undo()
    importlib.reload(toml_edit)
    importlib.reload(nvidia_runtime_config)


def test_containerd_without_a_toml_parser_says_what_to_install(run, tmp_path, without_toml):
    assert nvidia_runtime_config.HAS_TOML is False
    conf = tmp_path / "config.toml"
    done = run(containerd(conf))
    assert done.failed and "install the python3-tomli package" in done.result["msg"]
    assert not conf.exists()
    # Docker needs no TOML parser.
    assert run(docker(tmp_path / "daemon.json")).result["changed"] is True


# --------------------------------------------------------------------------------------------- helpers


def test_merge_docker_leaves_its_input_alone():
    data = {"runtimes": {"nvidia": {"path": "/x"}}, "default-runtime": "nvidia"}
    new = nvidia_runtime_config.merge_docker(data, "nvidia", "/y", False, "present")
    assert data == {"runtimes": {"nvidia": {"path": "/x"}}, "default-runtime": "nvidia"}
    assert new == {"runtimes": {"nvidia": {"path": "/y", "args": []}}}


# --------------------------------------------------------------------------------------------- runtime_path
# A runtime_path that is legal but not on the host is written with a warning (issue 24, class
# 6); one that can never name a binary fails before anything changes.


@pytest.fixture
def warned(monkeypatch):
    warnings = []
    monkeypatch.setattr(nvidia_runtime_config.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    return warnings


@pytest.mark.parametrize("make, where", [
    (lambda tmp: str(tmp / "missing" / "nvidia-container-runtime"), "does not exist on this host"),
    (lambda tmp: "/usr/local/nvidia/toolkit/nvidia-container-runtime-does-not-exist", "does not exist on this host"),
    (str, "is not an executable file on this host"),  # the directory itself
    (lambda tmp: str((tmp / "not-executable").write_text("#!/bin/sh\n") and tmp / "not-executable"), "is not an executable file on this host"),
    (lambda tmp: "nvidia-container-runtime-not-on-path", "is not found on this host's PATH ("),
])
@pytest.mark.parametrize("engine, check", [("docker", False), ("containerd", False), ("docker", True), ("containerd", True)])
def test_a_runtime_path_missing_on_the_host_is_written_with_a_warning(run, warned, tmp_path, make, where, engine, check):
    runtime = make(tmp_path)
    conf = tmp_path / ("daemon.json" if engine == "docker" else "config.toml")
    done = run(dict(engine=engine, path=str(conf), runtime_path=runtime), check=check)
    assert not done.failed and done.result["changed"] is True
    assert conf.exists() is not check
    assert len(warned) == 1
    assert warned[0].startswith("runtime_path %s %s" % (runtime, where)), warned[0]
    assert warned[0].endswith(": %s would not start containers that ask for the runtime nvidia until it exists (the "
                              "nvidia-container-toolkit package installs /usr/bin/nvidia-container-runtime); the configuration "
                              "is written anyway" % ("Docker" if engine == "docker" else "containerd"))


def test_a_missing_default_runtime_warns_that_every_container_is_affected(run, warned, tmp_path):
    done = run(docker(tmp_path / "daemon.json", runtime_path="/nonexistent/runtime", set_default=True))
    assert not done.failed and warned == [
        "runtime_path /nonexistent/runtime does not exist on this host: Docker would not start every container (it is the "
        "default runtime) until it exists (the nvidia-container-toolkit package installs /usr/bin/nvidia-container-runtime); "
        "the configuration is written anyway"]


@pytest.mark.parametrize("runtime", [sys.executable, os.path.basename(sys.executable)])
def test_a_runtime_path_that_exists_gets_no_warning(run, warned, tmp_path, monkeypatch, runtime):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    assert not run(docker(tmp_path / "daemon.json", runtime_path=runtime)).failed and warned == []


def test_removing_the_runtime_does_not_warn_about_its_path(run, warned, tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"runtimes": {"nvidia": {"path": "/nonexistent/runtime"}}}))
    done = run(docker(conf, runtime_path="/nonexistent/runtime", state="absent"))
    assert done.result["changed"] is True and warned == []


@pytest.mark.parametrize("runtime, why", [
    ("usr/bin/nvidia-container-runtime", "is a relative path (it would depend on the engine's working directory)"),
    ("./nvidia-container-runtime", "is a relative path (it would depend on the engine's working directory)"),
    ("/usr/bin/nvidia-container-runtime ", "starts or ends with whitespace"),
    (" /usr/bin/nvidia-container-runtime", "starts or ends with whitespace"),
    ("/usr/bin/nvidia\ncontainer-runtime", "holds the control character '\\n' at position 15"),
    ("/usr/bin/nvidia-container-runtime\x00", "holds the control character '\\x00' at position 33"),
])
@pytest.mark.parametrize("check", [False, True])
def test_a_runtime_path_that_can_never_name_a_binary_fails_before_any_change(run, tmp_path, runtime, why, check):
    conf = tmp_path / "daemon.json"
    conf.write_text(USER_DAEMON)
    done = run(docker(conf, runtime_path=runtime), check=check)
    assert done.failed
    assert done.result["msg"] == ("runtime_path %r %s; give an absolute path (for example /usr/bin/nvidia-container-runtime) or "
                                  "a program name the engine looks up on its PATH; nothing was changed" % (runtime, why))
    assert conf.read_text() == USER_DAEMON
