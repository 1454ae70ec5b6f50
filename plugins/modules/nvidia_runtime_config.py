#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_runtime_config
short_description: Register the NVIDIA container runtime with Docker or containerd, merging into the existing config
version_added: "0.1.0"
description:
  - Adds (or removes) the NVIDIA container runtime in the Docker (C(daemon.json)) or containerd
    (C(config.toml)) configuration by merging into the file that is there. Every other key, runtime
    and setting the file has stays; the file is never replaced by a template.
  - Docker - the JSON is parsed, the runtime entry C(runtimes.<runtime_name>) is set to the
    runtime's C(path) (other keys of that entry are kept, C(args) is added as V([]) when missing),
    and the result is written with four-space indentation. A file that already has the right
    content is not rewritten, whatever its formatting.
  - containerd - the file is edited as text, so comments and layout survive. Key lines are
    replaced or inserted inside the existing C([table]) sections and missing tables are added
    after their closest relatives. The result is parsed again and must equal the old
    configuration plus exactly the intended change; when the text edit cannot produce that (for
    example a parent table written as an inline table or with dotted keys), the task fails and
    the file is left as it is.
  - Version 2 configs (containerd 1.x) use the CRI plugin C(io.containerd.grpc.v1.cri), version 3
    configs (containerd 2.x) C(io.containerd.cri.v1.runtime). The runtime is registered as
    C(runtime_type = "io.containerd.runc.v2") with C(options.BinaryName) set to O(runtime_path).
  - Writes are atomic (a temporary file in the same directory, then a rename); owner, group and
    mode of an existing file are kept, and a symbolic link is written through to its target. A new file gets mode C(0644), and a missing parent
    directory is created with mode C(0755).
  - Restarting Docker or containerd so that it reads the change is left to the caller (a handler
    notified when the task reports a change).
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  engine:
    description: The container engine whose configuration is edited.
    type: str
    required: true
    choices: [docker, containerd]
  path:
    description:
      - The configuration file.
      - Defaults to C(/etc/docker/daemon.json) for O(engine=docker) and C(/etc/containerd/config.toml)
        for O(engine=containerd).
    type: path
  runtime_name:
    description: Name of the runtime entry (C(docker run --runtime <name>), a Kubernetes RuntimeClass handler).
    type: str
    default: nvidia
  runtime_path:
    description:
      - The runtime binary (Docker's runtime C(path), containerd's C(BinaryName)), an absolute
        path or a program name the engine looks up on its C(PATH).
      - With O(state=present), a path that does not exist on the host, is not executable, or a
        name not on the module's C(PATH) gets a warning naming it - the engine would not start
        containers of the runtime (every container, with O(set_default=true)) until it exists -
        and the file is written anyway, in check mode the same. It is a warning and not a
        failure because the runtime is often installed by a later task (the
        C(nvidia-container-toolkit) package) or after the configuration on an image build, and
        the engine itself still starts.
      - A value that can never name the binary fails before anything changes - empty, a space at
        either end, a control character, or a relative path with a C(/).
    type: str
    default: /usr/bin/nvidia-container-runtime
  set_default:
    description:
      - V(true) makes the runtime the engine's default (Docker C(default-runtime), containerd
        C(default_runtime_name) in the CRI plugin's C(containerd) table).
      - V(false) removes that setting only when it names O(runtime_name) (the engine goes back to
        its built-in default); a default that names another runtime is left alone.
    type: bool
    default: false
  state:
    description:
      - V(present) adds or updates the runtime entry.
      - V(absent) removes the runtime entry, and the default runtime setting when it names
        O(runtime_name). Everything else stays.
    type: str
    default: present
    choices: [present, absent]
  containerd_config_version:
    description:
      - The containerd config C(version) written into a new file (missing, empty, or with nothing
        but comments) for O(engine=containerd). V(2) is containerd 1.x's format, V(3) containerd 2.x's.
      - An existing file keeps its own C(version). Version 1 files (no C(version) key) are not
        supported and fail the task; migrate them first.
    type: int
    default: 2
    choices: [2, 3]
  backup:
    description: Keep a timestamped copy of the file before changing it.
    type: bool
    default: false
  validate:
    description:
      - A command run against the new content (in a temporary file, whose path replaces C(%s))
        before the file is replaced, for example C(containerd --config %s config dump).
      - A non-zero exit fails the task with the command's output and the file is not replaced.
      - Not run in check mode.
    type: str
attributes:
  check_mode:
    support: full
    description: Computes the change and reports it (with the diff); writes nothing and runs no O(validate) command.
  diff_mode:
    support: full
    description: The whole file before and after.
  platform:
    description: Reads and writes plain files; any POSIX host with Python.
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.posix
requirements:
  - For O(engine=containerd), a TOML parser on the managed host - C(tomllib) (Python 3.11+) or
    C(tomli) (the C(python3-tomli) package on Ubuntu 22.04).
notes:
  - Docker's C(containerd.io) package ships C(/etc/containerd/config.toml) with
    C(disabled_plugins = ["cri"]) and no C(version) key. That file is a version 1 config and is
    refused; the CRI runtime entry only matters where the CRI plugin is enabled (Kubernetes).
    Docker itself reads O(engine=docker).
seealso:
  - name: NVIDIA Container Toolkit - installation and runtime configuration
    description: What C(nvidia-ctk runtime configure) writes, which this module does as a merge.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html
  - module: ansible.builtin.template
    description: The O(validate) option works like the template module's.
"""

EXAMPLES = r"""
- name: Register the NVIDIA runtime with Docker, keeping daemon.json's other settings
  llmfleet.deepseek.nvidia_runtime_config:
    engine: docker
  notify: Restart docker

- name: Make it Docker's default runtime, keeping a backup
  llmfleet.deepseek.nvidia_runtime_config:
    engine: docker
    set_default: true
    backup: true

- name: Register it with containerd's CRI plugin (Kubernetes), checked by containerd first
  llmfleet.deepseek.nvidia_runtime_config:
    engine: containerd
    set_default: true
    validate: containerd --config %s config dump
  notify: Restart containerd

- name: A new containerd 2.x config
  llmfleet.deepseek.nvidia_runtime_config:
    engine: containerd
    containerd_config_version: 3

- name: Remove the runtime again (and the default, if it named it)
  llmfleet.deepseek.nvidia_runtime_config:
    engine: docker
    state: absent
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
engine:
  description: The engine, as given.
  returned: always
  type: str
  sample: docker
runtimes:
  description: Names of the runtimes the file configures after the change (sorted).
  returned: always
  type: list
  elements: str
  sample: [nvidia, runc-custom]
default_runtime:
  description: The default runtime the file sets after the change; null when it sets none (the engine's built-in default).
  returned: always
  type: str
  sample: nvidia
config_version:
  description: The containerd config version of the file (null for Docker).
  returned: always
  type: int
  sample: 2
backup_file:
  description: The backup made before the change.
  returned: changed and O(backup) is true and the file existed
  type: str
  sample: /etc/docker/daemon.json.2041.2025-01-31@12:00:00~
"""

import copy
import json
import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmfleet.deepseek.plugins.module_utils import toml_edit

# tomllib or tomli (None without either); the import and its fallback are toml_edit's.
tomllib = toml_edit.tomllib
HAS_TOML = toml_edit.HAS_TOML


DEFAULT_RUNTIME_PATH = "/usr/bin/nvidia-container-runtime"
DEFAULT_PATHS = {"docker": "/etc/docker/daemon.json", "containerd": "/etc/containerd/config.toml"}
# containerd config version -> id of the CRI plugin that holds the runtimes.
CRI_PLUGINS = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
RUNC_V2 = "io.containerd.runc.v2"
NO_TOML_PARSER = ("engine=containerd needs a TOML parser on the managed host: Python 3.11+ has tomllib; "
                  "on older Pythons install the python3-tomli package (or tomli from PyPI)")


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            engine=dict(type="str", required=True, choices=["docker", "containerd"]),
            path=dict(type="path"),
            runtime_name=dict(type="str", default="nvidia"),
            runtime_path=dict(type="str", default=DEFAULT_RUNTIME_PATH),
            set_default=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            containerd_config_version=dict(type="int", default=2, choices=[2, 3]),
            backup=dict(type="bool", default=False),
            validate=dict(type="str"),
        ),
        supports_check_mode=True,
    )


def runtime_path_problem(runtime):
    """Why runtime_path can never name the runtime's binary (the end of a sentence), or None.
    A path with a '/' that is not absolute would depend on the engine's working directory; a
    control character or a space at either end is never part of a real path."""
    if runtime != runtime.strip():
        return "starts or ends with whitespace"
    for position, char in enumerate(runtime):
        if ord(char) < 0x20 or 0x7f <= ord(char) < 0xa0:
            return "holds the control character %r at position %d" % (char, position)
    if "/" in runtime and not os.path.isabs(runtime):
        return "is a relative path (it would depend on the engine's working directory)"
    return None


class ConfigError(Exception):
    """The file cannot be merged into; the message says why. Nothing has been written."""


# ---------------------------------------------------------------------------------------------
# Docker: daemon.json


def parse_docker(text, path):
    """daemon.json as a dict ({} for a missing, empty or blank file)."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError("%s is not valid JSON (%s); nothing was changed" % (path, exc))
    if not isinstance(data, dict):
        raise ConfigError("%s must hold a JSON object at the top, not %s; nothing was changed" % (path, type(data).__name__))
    if "runtimes" in data and not isinstance(data["runtimes"], dict):
        raise ConfigError("%s: 'runtimes' must be a JSON object; nothing was changed" % path)
    return data


def merge_docker(data, name, runtime_path, set_default, state):
    """The wanted daemon.json: a copy of data with our runtime (and default) set or removed."""
    new = copy.deepcopy(data)
    if state == "present":
        runtimes = new.setdefault("runtimes", {})
        entry = runtimes.get(name)
        entry = dict(entry) if isinstance(entry, dict) else {}
        entry["path"] = runtime_path
        entry.setdefault("args", [])
        runtimes[name] = entry
        if set_default:
            new["default-runtime"] = name
    else:
        runtimes = new.get("runtimes")
        if isinstance(runtimes, dict) and name in runtimes:
            del runtimes[name]
            if not runtimes:
                del new["runtimes"]
    if new.get("default-runtime") == name and (state == "absent" or not set_default):
        del new["default-runtime"]
    return new


def render_docker(data):
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"


def plan_docker(text, params, path):
    old = parse_docker(text, path)
    new = merge_docker(old, params["runtime_name"], params["runtime_path"], params["set_default"], params["state"])
    changed = new != old
    return {
        "changed": changed,
        "text": render_docker(new) if changed else (text or ""),
        "runtimes": sorted(new.get("runtimes") or {}),
        "default_runtime": new.get("default-runtime"),
        "config_version": None,
        "warnings": [],
    }


# ---------------------------------------------------------------------------------------------
# containerd: config.toml


def parse_toml(text, path):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("%s is not valid TOML (%s); nothing was changed" % (path, exc))


def _table(data, path, create, where):
    node = data
    for depth, part in enumerate(path):
        if part not in node:
            if not create:
                return None
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError("%s: %s is not a table; nothing was changed" % (where, toml_edit.dotted_key(path[:depth + 1])))
    return node


def _prune(data, path):
    """data without the empty tables along path (deepest first). Whether an empty table is still
    there after a text edit depends on whether it had a header of its own; to containerd an
    empty table and a missing one are the same."""
    data = copy.deepcopy(data)
    for depth in range(len(path), 0, -1):
        parent = _table(data, path[:depth - 1], False, "")
        if parent is None or path[depth - 1] not in parent:
            continue
        if parent[path[depth - 1]] != {}:
            break
        del parent[path[depth - 1]]
    return data


def containerd_version(old, path):
    version = old.get("version")
    if version in (2, 3) and not isinstance(version, bool):
        return version
    if version is None or version == 1:
        raise ConfigError(
            "%s is a containerd version 1 config (%s), which is not supported: migrate it first "
            "(containerd 2.x: 'containerd config migrate'; containerd 1.x: write version = 2 at the top and move "
            "any version 1 settings to their version 2 place) and run again; nothing was changed"
            % (path, "it has no version key" if version is None else "version = 1"))
    raise ConfigError("%s has version = %r; only containerd config versions 2 and 3 are supported; nothing was changed"
                      % (path, version))


def plan_containerd(text, params, path):
    if tomllib is None:
        raise ConfigError(NO_TOML_PARSER)
    name, state = params["runtime_name"], params["state"]
    blank = text is None or not text.strip()
    old = {} if blank else parse_toml(text, path)
    fresh = not old  # missing, empty or only comments: gets the version we are told
    version = params["containerd_config_version"] if fresh else containerd_version(old, path)
    plugin = CRI_PLUGINS[version]
    table_path = ["plugins", plugin, "containerd"]
    runtime = table_path + ["runtimes", name]

    want = copy.deepcopy(old)
    if state == "present":
        if fresh:
            want["version"] = version
        entry = _table(want, runtime, True, path)
        entry["runtime_type"] = RUNC_V2
        _table(entry, ["options"], True, path + ": " + toml_edit.dotted_key(runtime))["BinaryName"] = params["runtime_path"]
        if params["set_default"]:
            _table(want, table_path, True, path)["default_runtime_name"] = name
    else:
        runtimes = _table(want, table_path + ["runtimes"], False, path)
        if runtimes is not None:
            runtimes.pop(name, None)
    containerd = _table(want, table_path, False, path) or {}
    if containerd.get("default_runtime_name") == name and (state == "absent" or not params["set_default"]):
        del containerd["default_runtime_name"]

    runtimes = containerd.get("runtimes")
    result = {
        "changed": want != old,
        "text": text or "",
        "runtimes": sorted(runtimes) if isinstance(runtimes, dict) else [],
        "default_runtime": containerd.get("default_runtime_name"),
        "config_version": version,
        "warnings": [],
    }
    disabled = old.get("disabled_plugins")
    if isinstance(disabled, list) and ("cri" in disabled or plugin in disabled):
        result["warnings"].append("%s disables the CRI plugin (disabled_plugins); the runtime entry has no effect until it is enabled" % path)
    if not result["changed"]:
        return result

    try:
        result["text"] = edit_containerd(text or "", old, want, params, fresh, version, table_path, runtime)
    except (IndexError, ValueError) as exc:
        # The text scanner met a layout it cannot edit line by line.
        raise ConfigError(_edit_failed(path, table_path, "the file could not be read as expected (%s)" % exc))
    check = parse_toml_edit(result["text"], path, table_path)
    if _prune(check, runtime[:-1]) != _prune(want, runtime[:-1]):
        raise ConfigError(_edit_failed(path, table_path, "the edited file would differ from the intended change in more than that change"))
    return result


def edit_containerd(text, old, want, params, fresh, version, table_path, runtime):
    """The text edits from old to want (see plan_containerd)."""
    name = params["runtime_name"]
    if fresh and "version" in want:
        text = toml_edit.set_value(text, ["version"], str(version))
    old_containerd = _table(copy.deepcopy(old), table_path, False, "") or {}
    old_entry = _table(copy.deepcopy(old), runtime, False, "") or {}
    wanted_default = (_table(copy.deepcopy(want), table_path, False, "") or {}).get("default_runtime_name")
    if wanted_default != old_containerd.get("default_runtime_name"):
        if wanted_default is None:
            text = toml_edit.delete(text, table_path + ["default_runtime_name"])
        else:
            text = toml_edit.set_value(text, table_path + ["default_runtime_name"], toml_edit.basic_string(wanted_default))
    if params["state"] == "present":
        if old_entry.get("runtime_type") != RUNC_V2:
            text = toml_edit.set_value(text, runtime + ["runtime_type"], toml_edit.basic_string(RUNC_V2))
        if (old_entry.get("options") or {}).get("BinaryName") != params["runtime_path"]:
            text = toml_edit.set_value(text, runtime + ["options", "BinaryName"], toml_edit.basic_string(params["runtime_path"]))
    elif old_entry or name in (old_containerd.get("runtimes") or {}):
        text = toml_edit.delete(text, runtime)
    return text


def _edit_failed(path, table_path, why):
    return ("%s could not be merged as text: %s. The CRI tables are probably written as inline tables or dotted keys "
            "(for example under [%s]); write them as [table] sections or make the change by hand. Nothing was changed"
            % (path, why, toml_edit.dotted_key(table_path)))


def parse_toml_edit(text, path, table_path):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_edit_failed(path, table_path, "the edited file would not parse (%s)" % exc))


# ---------------------------------------------------------------------------------------------


class RuntimeConfig:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **extra)

    def read(self, path):
        """The file's text, or None when it does not exist."""
        if os.path.isdir(path):
            self.fail("%s is a directory, not a config file" % path)
        if not os.path.exists(path):
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            self.fail("cannot read %s: %s" % (path, exc))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail("%s is not UTF-8 text (%s); nothing was changed" % (path, exc))

    def runtime_path_warning(self, engine):
        """A warning when runtime_path is not an executable on this host (the engine would not
        start containers of the runtime until it is), or None. Not a failure: the runtime is
        often installed by a later task (nvidia-container-toolkit), and the engine itself starts."""
        runtime = self.params["runtime_path"]
        if os.path.isabs(runtime):
            if not os.path.exists(runtime):
                where = "does not exist on this host"
            elif os.path.isdir(runtime) or not os.access(runtime, os.X_OK):
                where = "is not an executable file on this host"
            else:
                return None
        else:
            if self.module.get_bin_path(runtime):
                return None
            where = "is not found on this host's PATH (%s)" % os.environ.get("PATH", "")
        whose = "every container (it is the default runtime)" if self.params["set_default"] else (
            "containers that ask for the runtime %s" % self.params["runtime_name"])
        return ("runtime_path %s %s: %s would not start %s until it exists (the nvidia-container-toolkit package "
                "installs /usr/bin/nvidia-container-runtime); the configuration is written anyway"
                % (runtime, where, "Docker" if engine == "docker" else "containerd", whose))

    def run(self):
        params = self.params
        engine = params["engine"]
        path = params["path"] or DEFAULT_PATHS[engine]
        for option in ("runtime_name", "runtime_path"):
            if not params[option]:
                self.fail("%s must not be empty" % option)
        why = runtime_path_problem(params["runtime_path"])
        if why:
            self.fail("runtime_path %r %s; give an absolute path (for example %s) or a program name the engine looks up "
                      "on its PATH; nothing was changed" % (params["runtime_path"], why, DEFAULT_RUNTIME_PATH))
        if params["validate"] is not None and "%s" not in params["validate"]:
            self.fail("validate must contain %%s (the file to check): %r" % params["validate"])
        if params["state"] == "present":
            warning = self.runtime_path_warning(engine)
            if warning:
                self.module.warn(warning)
        text = self.read(path)
        try:
            if engine == "docker":
                plan = plan_docker(text, params, path)
            else:
                plan = plan_containerd(text, params, path)
        except ConfigError as exc:
            self.fail(str(exc), path=path)
        for warning in plan["warnings"]:
            self.module.warn(warning)
        result = {"changed": plan["changed"], "path": path, "engine": engine, "runtimes": plan["runtimes"],
                  "default_runtime": plan["default_runtime"], "config_version": plan["config_version"]}
        if self.module._diff:
            result["diff"] = {"before": text or "", "after": plan["text"], "before_header": path, "after_header": path}
        if plan["changed"] and not self.module.check_mode:
            backup = self.write(path, plan["text"], text is not None)
            if backup:
                result["backup_file"] = backup
        return result

    def write(self, path, content, existed):
        """Validate content, back the old file up, replace it atomically; the backup's path. A
        symbolic link is written through (its target is replaced, the link stays)."""
        path = os.path.realpath(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory)
            os.chmod(directory, 0o755)
        handle, temp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content.encode("utf-8"))
            if self.params["validate"]:
                command = self.params["validate"].replace("%s", shlex.quote(temp))
                rc, out, err = self.module.run_command(command)
                if rc != 0:
                    self.fail("validate failed (rc %d) for the new %s, which was not replaced: %s"
                              % (rc, path, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=command)
            backup = self.module.backup_local(path) if existed and self.params["backup"] else None
            if not existed:
                os.chmod(temp, 0o644)
            self.module.atomic_move(temp, path)
            if not existed:
                os.chmod(path, 0o644)
            return backup
        finally:
            if os.path.exists(temp):
                os.unlink(temp)


def main():
    module = build_module()
    module.exit_json(**RuntimeConfig(module).run())


if __name__ == "__main__":
    main()
