# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role inputs judged without a host: a role's variables against its argument spec, then the
rules a spec cannot say (ranges, relations between two variables, regular expressions, URLs,
absolute paths, versions, GPU settings against `llmfleet_gpu`).

Pure functions. plugins/filter/inputs.py exposes them as the `input_problems` filter, which each
role's tasks/validate_inputs.yml calls once, in site.yml's first play (for every role the host
will run, before any role changes anything) or at the role's start when it runs on its own.

Each role's function takes the role's variables (name -> value) and a context
(`host`, `gpu`: llmfleet_gpu or None when unknown, `offline`: llmfleet_offline, plus what the
role passes) and returns (problems, notes): sentences naming the variable, the value and what is
accepted; notes say what could not be judged here and why."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings, trtllm, trtllm_options

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_POSIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]-]+$")
_IPV4 = re.compile(r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$")
_IP = re.compile(_IPV4.pattern + "|" + _IPV6.pattern)
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?$")
# A package name of nvidia_driver's lists may carry the role's placeholders ({b}, {o}, ...).
_PACKAGE_TEMPLATE = re.compile(r"^[a-z0-9{][a-z0-9+.{}-]*(=[A-Za-z0-9.+~:{}-]+)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# Revision names that move: a branch or a ref is not a revision (the same name would serve other
# weights tomorrow, and a staged revision is never copied or checked again). Compared without case.
MOVING_REVISIONS = ("main", "master", "head", "trunk", "develop", "development", "dev", "latest",
                    "stable", "nightly", "release", "default")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


# -- generic -------------------------------------------------------------------------------
def show(value):
    """A value as the user wrote it in YAML (JSON for structures, the text for strings)."""
    if isinstance(value, str):
        return "'%s'" % value
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _int(value):
    """An int from an int, a whole float or a string of digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == int(value) else None
    if isinstance(value, str) and re.match(r"^\s*-?[0-9]+\s*$", value):
        return int(value)
    return None


def _float(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_list(value):
    return isinstance(value, (list, tuple))


class Judge(object):
    """Collects problems about one role's variables (`values`)."""

    def __init__(self, values):
        self.values = values
        self.problems = []
        self.notes = []

    def add(self, name, text, value=None, use_value=True):
        if use_value:
            self.problems.append("%s: %s %s" % (name, show(self.values.get(name) if value is None else value), text))
        else:
            self.problems.append("%s: %s" % (name, text))

    def integer(self, name, low=None, high=None, accepted=None):
        value = self.values.get(name)
        number = _int(value)
        if number is None or (low is not None and number < low) or (high is not None and number > high):
            if accepted is None:
                if low is not None and high is not None:
                    accepted = "a whole number from %d to %d" % (low, high)
                elif low is not None:
                    accepted = "a whole number of at least %d" % low
                else:
                    accepted = "a whole number"
            self.add(name, "is not accepted; give %s" % accepted)
            return None
        return number

    def absolute_path(self, name, empty=True, what="an absolute path"):
        value = self.values.get(name)
        if value in ("", None) and empty:
            return
        if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
            self.add(name, "is not accepted; give %s%s (no spaces)" % (what, ", or empty" if empty else ""))

    def url(self, name, schemes=("http", "https"), empty=True):
        value = self.values.get(name)
        if value in ("", None) and empty:
            return
        scheme = value.split(":", 1)[0].lower() if isinstance(value, str) else None
        if scheme == "file" and scheme in schemes:
            # apt and get_url read file:/path and file:///path (a local or mounted repository).
            ok = bool(re.match(r"^file:(///|/(?!/))[^\s]*$", value))
        else:
            ok = scheme in schemes and _URL.match(value) and not value.split("://", 1)[1].startswith("/")
        if not ok:
            listed = ["%s://" % s for s in schemes]
            listed = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
            self.add(name, "is not a URL; give an %s URL%s" % (listed, ", or empty" if empty else ""))

    def names(self, name, pattern, accepted, allow_empty_list=True):
        value = self.values.get(name)
        if value is None:
            value = []
        if not _is_list(value):
            self.add(name, "is not a list; give a list of %s" % accepted)
            return
        bad = [item for item in value if not isinstance(item, str) or not pattern.match(item)]
        if bad:
            self.add(name, "%s not accepted; give %s" % ("is" if len(bad) == 1 else "are", accepted),
                     value=bad if len(bad) > 1 else bad[0])
        if not allow_empty_list and not value:
            self.add(name, "is empty; give at least one of %s" % accepted, use_value=False)

    def regexes(self, name, matched_against):
        value = self.values.get(name)
        if value is None:
            return
        if not _is_list(value):
            self.add(name, "is not a list; give a list of regular expressions (Python syntax) matched against %s" % matched_against)
            return
        for item in value:
            if not isinstance(item, str) or not item:
                self.add(name, "is not accepted; give a non-empty regular expression (Python syntax) matched against %s"
                         % matched_against, value=item)
                continue
            try:
                re.compile(item)
            except re.error as exc:
                self.add(name, "is not a regular expression (%s); give one in Python syntax matched against %s, e.g. '^linux-image-.*$'"
                         % (exc, matched_against), value=item)

    def choice(self, name, choices):
        value = self.values.get(name)
        if value not in choices:
            self.add(name, "is not accepted; give one of %s" % ", ".join(choices))


# -- argument specs ---------------------------------------------------------------------------
def spec_problems(spec, values):
    """What the role's argument spec (meta/argument_specs.yml, the entry point's options) says
    about `values`: the same validator and messages as the role's own start (Ansible's
    validate_argument_spec)."""
    if not spec:
        return []
    provided = dict((name, values[name]) for name in spec if name in values)
    result = ArgumentSpecValidator(spec).validate(provided, validate_role_argument_spec=True)
    return list(result.error_messages)


# -- ubuntu_base ------------------------------------------------------------------------------
def ubuntu_base(values, context):
    j = Judge(values)
    for name in ("ubuntu_base_apt_mirror", "ubuntu_base_apt_security_mirror"):
        j.url(name, schemes=("http", "https", "file"))
    j.url("ubuntu_base_apt_proxy", schemes=("http", "https"))
    j.names("ubuntu_base_apt_components", re.compile(r"^[a-z0-9][a-z0-9-]*$"),
            "archive components (main, contrib, non-free-firmware, universe...)")
    j.integer("ubuntu_base_apt_cache_valid_time", low=0, accepted="seconds, 0 or more")
    j.names("ubuntu_base_packages_extra", _PACKAGE, "Debian package names (optionally name=version)")
    for name in ("ubuntu_base_ntp_servers", "ubuntu_base_ntp_pools"):
        j.names(name, _HOST, "host names or IP addresses (chrony adds its own options)")
    if _truthy(values.get("ubuntu_base_manage_sysctl", True)):
        merged = {}
        for name in ("ubuntu_base_sysctl", "ubuntu_base_sysctl_extra"):
            if isinstance(values.get(name), dict):
                merged.update(values[name])
        bad = {}
        for key, value in merged.items():
            if not re.match(r"^[a-z0-9_][a-z0-9_./-]*$", str(key)) or isinstance(value, bool) \
                    or not isinstance(value, (int, str)) \
                    or (isinstance(value, str) and not re.match(r"^[A-Za-z0-9 ._:/,+-]+$", value)):
                bad[str(key)] = value
        if bad:
            j.problems.append(
                "ubuntu_base_sysctl / ubuntu_base_sysctl_extra: refused %s. Accepted: keys like 'net.core.somaxconn' "
                "with an integer or a string of digits, letters and spaces (e.g. \"1024 65535\"); booleans, floats, "
                "lists, maps and empty values are refused" % show(bad))
    for name in ("ubuntu_base_limits_memlock", "ubuntu_base_limits_nofile"):
        value = values.get(name)
        if not (value == "unlimited" or (_int(value) is not None and _int(value) >= (1 if name.endswith("nofile") else 0))):
            j.add(name, "is not accepted; give 'unlimited' or a number%s" % (" above 0" if name.endswith("nofile") else ""))
    for name in ("ubuntu_base_service_user", "ubuntu_base_service_group"):
        value = values.get(name)
        if not isinstance(value, str) or not _POSIX_NAME.match(value):
            j.add(name, "is not a POSIX name; give lower case letters, digits, _ and -, at most 32, not starting with a digit")
    j.names("ubuntu_base_service_user_groups", _POSIX_NAME, "POSIX group names")
    j.absolute_path("ubuntu_base_service_home", empty=False)
    j.regexes("ubuntu_base_hold_patterns", "installed package names")
    j.regexes("ubuntu_base_unattended_upgrades_blacklist", "package names by unattended-upgrades")
    bad = [p for p in values.get("ubuntu_base_unattended_upgrades_blacklist") or [] if isinstance(p, str) and '"' in p]
    if bad:
        j.add("ubuntu_base_unattended_upgrades_blacklist", "cannot hold a double quote (apt's configuration quotes each entry)",
              value=bad)
    return j.problems, j.notes


def _truthy(value):
    return value is True or str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


# -- gpu_tuning -------------------------------------------------------------------------------
def gpu_tuning_settings(profiles, profile, explicit):
    """The settings gpu_tuning enforces: the profile's, overridden by the explicit ones that are
    set (not None). `explicit` names them by setting (`power_limit`) or by the role's variable
    (`gpu_tuning_power_limit`); other keys are ignored, so the role can pass all its variables
    and a new setting (gpu_settings.SETTINGS) needs no list in the role."""
    settings = dict((profiles or {}).get(profile) or {})
    explicit = explicit or {}
    for name in gpu_settings.SETTINGS:
        for key in (name, "gpu_tuning_" + name):
            if explicit.get(key) is not None:
                settings[name] = explicit[key]
    return settings


def gpu_tuning(values, context):
    j = Judge(values)
    host = context.get("host") or "this host"
    profiles = values.get("gpu_tuning_profiles")
    profile = values.get("gpu_tuning_profile")
    if not isinstance(profiles, dict):
        j.add("gpu_tuning_profiles", "is not a map; give profile name -> {setting: value}")
        return j.problems, j.notes
    for name, settings in sorted(profiles.items()):
        if not isinstance(settings, dict):
            j.problems.append("gpu_tuning_profiles: profile '%s' is %s, not a map of settings (%s)"
                              % (name, show(settings), ", ".join(gpu_settings.SETTINGS)))
            continue
        unknown = sorted(set(settings) - set(gpu_settings.SETTINGS))
        if unknown:
            j.problems.append("gpu_tuning_profiles: profile '%s' has unknown settings %s; settings are %s"
                              % (name, ", ".join(unknown), ", ".join(gpu_settings.SETTINGS)))
    if profile not in profiles:
        j.problems.append("gpu_tuning_profile: profile '%s' does not exist. Accepted: one of %s (add your own to "
                          "gpu_tuning_profiles)" % (profile, show(sorted(profiles))))
        return j.problems, j.notes
    cap = j.integer("gpu_tuning_power_cap_w", low=0, accepted="watts, 0 or more")
    cap_refused = profile == "power_capped" and cap is not None and cap <= 0
    if cap_refused:
        j.problems.append("gpu_tuning_power_cap_w: %s is not accepted with gpu_tuning_profile power_capped "
                          "(power_capped needs gpu_tuning_power_cap_w > 0, in watts)" % show(values.get("gpu_tuning_power_cap_w")))
    explicit = dict((name, values.get("gpu_tuning_" + name)) for name in gpu_settings.SETTINGS)
    profile_settings = profiles.get(profile) if isinstance(profiles.get(profile), dict) else {}
    settings = gpu_tuning_settings({profile: profile_settings}, profile, explicit)
    labels = dict((name, ("gpu_tuning_" + name) if explicit.get(name) is not None
                   else "gpu_tuning_profiles.%s.%s" % (profile, name)) for name in settings)
    if cap_refused and explicit.get("power_limit") is None:
        settings.pop("power_limit", None)  # said above, by the variable the user sets
    # The nvidia_gpu options the role passes (and writes for the boot unit), judged by the same
    # function as the module and the boot entry judge them, in the role's words.
    request, selectors, problems = gpu_settings.judge(dict(settings, gpus=values.get("gpu_tuning_gpus")),
                                                      labels, "gpu_tuning_gpus")
    j.problems.extend(problems)
    j.absolute_path("gpu_tuning_venv", empty=False)
    j.absolute_path("gpu_tuning_wheelhouse", what="a directory on the host with the nvidia-ml-py wheel")
    j.url("gpu_tuning_pip_index_url")
    version = values.get("gpu_tuning_nvml_version")
    if not isinstance(version, str) or not re.match(r"^[0-9][0-9A-Za-z.+!_-]*$", version):
        j.add("gpu_tuning_nvml_version", "is not a version of nvidia-ml-py; give one such as \"13.580.82\" (quoted)")
    if context.get("offline") and not values.get("gpu_tuning_wheelhouse"):
        j.problems.append(
            "gpu_tuning: llmfleet_offline is true and gpu_tuning_wheelhouse is empty, so pip would read an index for "
            "nvidia-ml-py. Accepted: a directory on the host with its wheel (offline_repo publishes the bundle's "
            "wheelhouse as llmfleet_offline_wheelhouse, the default)")
    if j.problems:
        return j.problems, j.notes
    _gpu_tuning_against_gpus(j, selectors, request, labels, context.get("gpu"), host)
    return j.problems, j.notes


def _gpu_tuning_against_gpus(j, selectors, request, labels, gpu, host):
    if not request and not selectors:
        return
    if not isinstance(gpu, dict):
        j.notes.append("gpu_tuning on %s: llmfleet_gpu is not known here, so the settings were checked for form "
                       "only; nvidia_gpu checks them against each GPU before any change." % host)
        return
    if not gpu.get("present"):
        return  # the role skips the settings there and says so
    facts = gpu.get("gpus") or []
    if not facts:
        count = _int(gpu.get("count")) or 0
        beyond = [s for s in selectors if s.isdigit() and int(s) >= count]
        if beyond and count:
            j.problems.append("gpu_tuning_gpus: no GPU %s on %s; it has %d GPU(s) on its PCI bus: indices 0-%d"
                              % (", ".join(str(b) for b in beyond), host, count, count - 1))
        j.notes.append("gpu_tuning on %s: the values were checked for form only, not against the GPUs: NVML does not "
                       "answer yet (%s); nvidia_gpu checks them against each GPU before any change."
                       % (host, gpu.get("nvml_reason") or "no driver loaded"))
        return
    j.problems.extend(gpu_settings.against_gpus(request, selectors, facts, labels, "gpu_tuning_gpus", host))


# -- nvidia_driver ----------------------------------------------------------------------------
PRE_TURING = ("kepler", "maxwell", "pascal", "volta")


def nvidia_driver(values, context):
    j = Judge(values)
    for name in ("nvidia_driver_cuda_repo_url", "nvidia_driver_cuda_repo_key_url"):
        j.url(name, schemes=("http", "https", "file"))
    checksum = values.get("nvidia_driver_cuda_repo_key_checksum")
    if checksum and not (isinstance(checksum, str) and re.match(r"^sha256:[0-9a-fA-F]{64}$", checksum)):
        j.add("nvidia_driver_cuda_repo_key_checksum", "is not accepted; give \"sha256:<64 hex>\" of the key file, or empty")
    flavour = values.get("nvidia_driver_ubuntu_kernel_flavour")
    if not isinstance(flavour, str) or not re.match(r"^[a-z0-9][a-z0-9.+-]*$", flavour):
        j.add("nvidia_driver_ubuntu_kernel_flavour", "is not a kernel flavour; give one such as generic, lowlatency, aws, azure")
    for name in ("nvidia_driver_kernel_headers_packages", "nvidia_driver_packages_extra", "nvidia_driver_fabric_manager_packages"):
        j.names(name, _PACKAGE_TEMPLATE, "Debian package names (the role's {b}, {o}, {meta}, {flavour}, {kernel} allowed)")
    for name in ("nvidia_driver_secure_boot_signing_key", "nvidia_driver_secure_boot_signing_cert"):
        j.absolute_path(name, what="the absolute path of the file on the host")
    gpu = context.get("gpu")
    old = sorted(set((gpu or {}).get("architectures") or []) & set(context.get("pre_turing") or PRE_TURING))
    if values.get("nvidia_driver_kernel_module") == "open" and old:
        j.problems.append("nvidia_driver_kernel_module: 'open' is not accepted on %s: its GPUs are older than Turing (%s), "
                          "which the open kernel modules do not drive; give proprietary or auto"
                          % (context.get("host") or "this host", ", ".join(old)))
    return j.problems, j.notes


# -- nvidia_container_toolkit -----------------------------------------------------------------
def nvidia_container_toolkit(values, context):
    j = Judge(values)
    for name in ("nvidia_container_toolkit_repo_url", "nvidia_container_toolkit_repo_key_url",
                 "nvidia_container_toolkit_docker_repo_url", "nvidia_container_toolkit_docker_repo_key_url"):
        j.url(name, schemes=("http", "https", "file"))
    for name in ("nvidia_container_toolkit_docker_config", "nvidia_container_toolkit_containerd_config",
                 "nvidia_container_toolkit_cdi_spec"):
        j.absolute_path(name, empty=False)
    j.names("nvidia_container_toolkit_packages", _PACKAGE, "Debian package names")
    return j.problems, j.notes


# -- trtllm_service ---------------------------------------------------------------------------
def revision_problem(revision, variable="trtllm_service_model_revision"):
    """A sentence when `revision` is a name that moves (a branch, a ref), else None. Accepted: a
    commit (40 hex digits) or a name the site chooses for one set of weights (a date, a tag)."""
    if not isinstance(revision, str) or not revision:
        return None
    text = revision.strip()
    lowered = text.lower()
    if lowered.startswith(("refs/", "origin/", "heads/", "tags/")) or lowered in MOVING_REVISIONS:
        return ("%s: '%s' names something that moves (a branch or a ref), not one set of weights; give an immutable "
                "revision: a commit (40 hex digits) or a name the site chooses once for one set of files "
                "(e.g. \"2025-05-28-fp8\"); refused: %s and refs/..." % (variable, revision, ", ".join(MOVING_REVISIONS)))
    return None


def manifest_problems(text, variable="trtllm_service_model_manifest", limit=5):
    """Sentences for a sha256sum manifest that is not one "<sha256>  <relative path>" per line, or
    lists a path twice, or lists none."""
    if not isinstance(text, str):
        return ["%s: %s is not text; give the content of a SHA256SUMS file" % (variable, show(text))]
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return ["%s: the manifest has no entries; give one \"<sha256>  <relative path>\" line per file" % variable]
    bad, seen, twice = [], {}, []
    for number, line in lines:
        match = _MANIFEST_LINE.match(line)
        path = match.group(2) if match else None
        if not match or path.startswith("/") or ".." in path.split("/"):
            bad.append("line %d %s" % (number, show(line[:100])))
            continue
        if path in seen:
            twice.append(path)
        seen[path] = number
    problems = []
    if bad:
        problems.append("%s: %d line(s) are not \"<sha256, 64 lower-case hex>  <relative path>\" (sha256sum's format, "
                        "no absolute path, no ..): %s%s" % (variable, len(bad), "; ".join(bad[:limit]),
                                                            "; ..." if len(bad) > limit else ""))
    if twice:
        problems.append("%s: %s listed more than once" % (variable, ", ".join(sorted(set(twice)))))
    return problems


def trtllm_service(values, context):
    """trtllm_service's variables. The context its validate_inputs.yml passes, besides `host`, `gpu`
    (llmfleet_gpu) and `offline`: `require_gpu` (llmfleet_require_gpu: without it a host with no GPU
    skips the fit, with a note), `presets` (the preset names of vars/main.yml), `owned_flags` (the
    flags the role sets itself), `plan` (what vars/main.yml derives, the variables over the
    preset: tp_size, pp_size, ep_size, nodes, instances as {name, port, gpus}, weights_gib,
    kv_fraction, flags, extra_llm_api_options) and `node_revisions` (the hosts of
    trtllm_service_node_hosts that are in the inventory, each with the revision its inventory sets
    or None). Without `plan` only the variables' own rules are judged."""
    j = Judge(values)
    fraction = _float(values.get("trtllm_service_kv_cache_free_gpu_memory_fraction"))
    if fraction is None or not (fraction == 0 or 0 < fraction <= 1):
        j.add("trtllm_service_kv_cache_free_gpu_memory_fraction",
              "is not accepted; give the share of GPU memory left after the weights for the KV cache, above 0 and at most 1 "
              "(e.g. 0.9), or 0 for the preset's (else 0.9)")
    problem = revision_problem(values.get("trtllm_service_model_revision"))
    if problem:
        j.problems.append(problem)
    if values.get("trtllm_service_model_manifest"):
        j.problems.extend(manifest_problems(values["trtllm_service_model_manifest"]))
    for name in ("trtllm_service_tp_size", "trtllm_service_pp_size", "trtllm_service_ep_size", "trtllm_service_nodes"):
        j.integer(name, low=0, accepted="0 (the preset's, else the role's default) or a whole number above 0")
    weights = _float(values.get("trtllm_service_model_weights_gib"))
    if weights is None or weights < 0:
        j.add("trtllm_service_model_weights_gib", "is not accepted; give GiB, 0 or more (0: the preset's, or no weights check)")
    j.integer("trtllm_service_base_port", low=1024, high=65535)
    j.integer("trtllm_service_min_driver_branch", low=100, high=9999, accepted="a driver branch such as 575")
    for name in ("trtllm_service_start_timeout", "trtllm_service_ready_timeout"):
        j.integer(name, low=1, accepted="seconds, at least 1")
    j.integer("trtllm_service_drain_seconds", low=0, accepted="seconds, 0 or more")
    for name in ("trtllm_service_models_dir", "trtllm_service_venvs_dir"):
        j.absolute_path(name, empty=False)
    j.absolute_path("trtllm_service_model_http_ca", what="the CA bundle's absolute path on the host")
    user = values.get("trtllm_service_user")
    if not isinstance(user, str) or not _POSIX_NAME.match(user):
        j.add("trtllm_service_user", "is not a POSIX name; give lower case letters, digits, _ and -, at most 32")
    headers = values.get("trtllm_service_model_http_headers")
    if isinstance(headers, dict):
        bad = sorted(str(k) for k, v in headers.items() if not _HEADER.match(str(k)) or not isinstance(v, str)
                     or "\n" in v or "\r" in v)
        if bad:
            j.problems.append("trtllm_service_model_http_headers: %s are not header name -> text (one line) entries"
                              % ", ".join(bad))  # values not shown: they hold tokens
    environment = values.get("trtllm_service_environment")
    if isinstance(environment, dict):
        bad = sorted(str(k) for k, v in environment.items() if not _ENV_NAME.match(str(k))
                     or isinstance(v, (dict, list)) or "\n" in str(v))
        if bad:
            j.add("trtllm_service_environment", "has entries that are not NAME -> one-line value (NAME: letters, digits, _): %s"
                  % ", ".join(bad), use_value=False)
    options = values.get("trtllm_service_container_options")
    if _is_list(options):
        bad = [o for o in options if not isinstance(o, str) or not o.startswith("-")]
        if bad:
            j.add("trtllm_service_container_options", "%s; give engine options, each starting with - (e.g. --read-only)"
                  % ("is not an engine option" if len(bad) == 1 else "are not engine options"),
                  value=bad[0] if len(bad) == 1 else bad)
    instances = values.get("trtllm_service_instances")
    if _is_list(instances):
        for number, item in enumerate(instances):
            gpus = item.get("gpus") if isinstance(item, dict) else None
            if not isinstance(item, dict) or not _is_list(gpus) or any(_int(g) is None or _int(g) < 0 for g in gpus):
                j.problems.append("trtllm_service_instances: entry %d %s needs gpus, a list of GPU indices (0, 1, ...)"
                                  % (number, show(item)))
    j.problems.extend(trtllm_model_problems(values))
    j.problems.extend(trtllm_install_problems(values, bool(context.get("offline"))))
    if context.get("presets") is not None:
        j.problems.extend(trtllm_preset_problems(values, context["presets"]))
    if not _matches("^/", values.get("trtllm_service_bin")):
        j.problems.append("trtllm_service_bin %s must be an absolute path" % _text(values.get("trtllm_service_bin")))
    plan = context.get("plan")
    if plan is None:
        return j.problems, j.notes
    j.problems.extend(trtllm_instances_problems(plan.get("instances")))
    if _as_int(plan.get("nodes")) > 1:
        j.problems.extend(trtllm_multinode_problems(values, context.get("host"), _as_int(plan.get("nodes")),
                                                    plan.get("instances"), context.get("node_revisions") or {}))
    if _as_int(values.get("trtllm_service_keep_revisions")) < 0:
        j.problems.append("trtllm_service_keep_revisions %s must be 0 or more" % _text(values.get("trtllm_service_keep_revisions")))
    j.problems.extend(trtllm_serve_problems(values, plan, context.get("owned_flags") or ()))
    fit, note = trtllm_fit_problems(values, plan, context)
    j.problems.extend(fit)
    j.notes.extend([note] if note else [])
    return j.problems, j.notes


# What the role checks beyond the argument spec and the rules above, in the order of its message.
# Worded as the role's assert always said them (Molecule scenarios and runbooks look for them).
TRTLLM_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TRTLLM_VERSION = r"^[0-9][0-9A-Za-z.+!_-]*$"
_TRTLLM_IMAGE = r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$"
_TRTLLM_IMAGE_ID = r"^sha256:[0-9a-f]{64}$"
_TRTLLM_NODE_ADDRESS = r"^([0-9]{1,3}\.){3}[0-9]{1,3}$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$"
_TRTLLM_INTERFACE = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,14}$"
_NO_GPU = {"present": False, "count": 0, "gpus": []}


def _text(value):
    """A value as a template writes it (str(); None is 'None')."""
    return value if isinstance(value, str) else str(value)


def _matches(pattern, value):
    """Jinja's `is match`: re.match on the value as text."""
    return re.match(pattern, _text(value)) is not None


def _as_int(value):
    """Jinja's int filter: a whole number, or 0 for what is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _distinct(items):
    """How many different items, as the unique filter counts them (text without case)."""
    seen = []
    for item in items:
        key = item.lower() if isinstance(item, str) else item
        if key not in seen:
            seen.append(key)
    return len(seen)


def trtllm_model_problems(values):
    """The model to serve: a name and a revision (directory names), and where it comes from."""
    problems = []
    name = values.get("trtllm_service_model_name")
    revision = values.get("trtllm_service_model_revision")
    src = values.get("trtllm_service_model_src")
    source = values.get("trtllm_service_model_source")
    if not name:
        problems.append("trtllm_service_model_name is empty (the model to serve; in site.yml llmfleet_model_service false "
                        "leaves the service out)")
    elif not _matches(TRTLLM_NAME, name):
        problems.append("trtllm_service_model_name %s must match %s" % (_text(name), TRTLLM_NAME))
    if not revision:
        problems.append("trtllm_service_model_revision is empty")
    elif not _matches(TRTLLM_NAME, revision) or revision == "current":
        problems.append("trtllm_service_model_revision %s must match %s" % (_text(revision), TRTLLM_NAME))
    if not src:
        problems.append("trtllm_service_model_src is empty (a directory on the host, or with trtllm_service_model_source "
                        "http the revision URL)")
    if source == "path" and src and not _matches("^/", src):
        problems.append("trtllm_service_model_src %s must be an absolute path (trtllm_service_model_source path)" % _text(src))
    if source == "http" and not _matches("^https?://[^/]+", src):
        problems.append("trtllm_service_model_src %s must be an http:// or https:// URL (trtllm_service_model_source http)"
                        % _text(src))
    return problems


def trtllm_install_problems(values, offline):
    """How trtllm-serve gets onto the host: a virtualenv of a version (from a wheelhouse or an
    index; offline only from the bundle's wheelhouse), or an image pinned by digest or ID (offline
    only from the bundle's archive), and the container engine's path."""
    problems = []
    mode = values.get("trtllm_service_install_mode")
    get = values.get
    if mode == "venv":
        if not _matches(_TRTLLM_VERSION, _text(get("trtllm_service_version"))):
            problems.append("trtllm_service_version %s must be a tensorrt-llm version such as 1.2.1 "
                            "(trtllm_service_install_mode venv)" % _text(get("trtllm_service_version")))
        if get("trtllm_service_wheelhouse") and not _matches("^/", get("trtllm_service_wheelhouse")):
            problems.append("trtllm_service_wheelhouse %s must be an absolute path" % _text(get("trtllm_service_wheelhouse")))
        if get("trtllm_service_pip_index_url") and not _matches("^https?://", get("trtllm_service_pip_index_url")):
            problems.append("trtllm_service_pip_index_url %s must be an http:// or https:// URL"
                            % _text(get("trtllm_service_pip_index_url")))
        if offline and not get("trtllm_service_wheelhouse"):
            problems.append("llmfleet_offline is true and trtllm_service_wheelhouse is empty: pip would read an index "
                            "(offline_repo publishes the wheelhouse of the bundle)")
    if mode == "container":
        image, image_id = get("trtllm_service_image"), get("trtllm_service_image_id")
        archive, digest = get("trtllm_service_image_archive"), get("trtllm_service_image_archive_sha256")
        if offline and not archive:
            problems.append("llmfleet_offline is true and trtllm_service_image_archive is empty: the image would be pulled "
                            "(offline_repo publishes the bundle)")
        if not image and not image_id:
            problems.append("trtllm_service_image or trtllm_service_image_id is needed (trtllm_service_install_mode container)")
        if image and not _matches(_TRTLLM_IMAGE, image):
            problems.append("trtllm_service_image %s must be pinned by digest: REPOSITORY[:TAG]@sha256:<64 hex>" % _text(image))
        if image_id and not _matches(_TRTLLM_IMAGE_ID, image_id):
            problems.append("trtllm_service_image_id %s must be sha256:<64 hex> (the image ID that docker image inspect "
                            "reports)" % _text(image_id))
        if archive and not image_id:
            problems.append("trtllm_service_image_archive needs trtllm_service_image_id (an archive loads with its ID; its "
                            "digest is not kept)")
        if archive and not _matches("^/", archive):
            problems.append("trtllm_service_image_archive %s must be an absolute path" % _text(archive))
        if digest and not _matches("^[0-9a-f]{64}$", digest):
            problems.append("trtllm_service_image_archive_sha256 %s must be 64 hex digits" % _text(digest))
    engine = get("trtllm_service_container_engine_bin")
    if engine and not _matches("^/", engine):
        problems.append("trtllm_service_container_engine_bin %s must be an absolute path" % _text(engine))
    return problems


def trtllm_preset_problems(values, presets):
    """A preset the role knows (`presets`: the names in its vars/main.yml), or none."""
    preset = values.get("trtllm_service_preset")
    if preset and preset not in presets:
        return ["trtllm_service_preset %s is not one of %s" % (_text(preset), ", ".join(_text(p) for p in presets))]
    return []


def trtllm_instances_problems(instances):
    """The instances of this host (as given, or the default layout): names unique and usable in a
    unit's name, loopback ports unique and unprivileged, at least one."""
    instances = instances if _is_list(instances) else []
    items = [item if isinstance(item, dict) else {} for item in instances]
    names = [_text(item.get("name", "")) for item in items]
    ports = [item.get("port") for item in items]
    numbers = [_as_int(port) for port in ports]
    problems = []
    if (_distinct(names) != len(names) or any(not _matches(TRTLLM_NAME, name) for name in names)
            or _distinct(ports) != len(ports) or any(n < 1024 or n > 65535 for n in numbers)):
        problems.append("trtllm_service_instances: names must be unique and match %s, ports unique and 1024-65535: %s"
                        % (TRTLLM_NAME, json.dumps(instances)))
    if not instances:
        problems.append("trtllm_service_instances is empty and the host has no GPU for the default layout")
    return problems


def trtllm_multinode_problems(values, host, nodes, instances, node_revisions):
    """An instance over `nodes` hosts (one MPI world): trtllm_service_node_hosts names them, the
    head first, each once, this host among them, all in the inventory and on one revision
    (`node_revisions`: those of them in the inventory, each with the revision it sets or None);
    this host's fabric address, interface and node sshd port; an install mode that can span
    hosts; one instance per host; the MPI launchers' paths."""
    get = values.get
    hosts = get("trtllm_service_node_hosts")
    hosts = list(hosts) if _is_list(hosts) else []
    problems = []
    if len(hosts) != nodes or _distinct(hosts) != len(hosts) or host not in hosts:
        problems.append("trtllm_service_node_hosts %s must name the %s hosts of this instance (trtllm_service_nodes or the "
                        "preset), the head first, once each, this host among them" % (json.dumps(hosts), nodes))
    unknown = [h for h in hosts if h not in node_revisions]
    if unknown:
        problems.append("trtllm_service_node_hosts %s are not in the inventory" % ", ".join(_text(h) for h in unknown))
    revisions = [node_revisions[h] for h in hosts if h in node_revisions and node_revisions[h] is not None]
    if len(set(_text(r) for r in revisions)) > 1:
        problems.append("trtllm_service_model_revision differs between the hosts of this instance (trtllm_service_node_hosts): "
                        "set it for their group")
    if not _matches(_TRTLLM_NODE_ADDRESS, get("trtllm_service_node_address")):
        problems.append("trtllm_service_node_address %s must be an IP address on the fabric network (the other hosts reach "
                        "this one there)" % _text(get("trtllm_service_node_address")))
    if not _matches(_TRTLLM_INTERFACE, get("trtllm_service_node_interface")):
        problems.append("trtllm_service_node_interface %s must name the fabric network interface (e.g. ens1f0; NCCL, Gloo "
                        "and MPI use it)" % json.dumps(get("trtllm_service_node_interface")))
    if not 1024 <= _as_int(get("trtllm_service_node_port")) <= 65535:
        problems.append("trtllm_service_node_port %s must be 1024-65535 (the node sshd runs unprivileged)"
                        % _text(get("trtllm_service_node_port")))
    if get("trtllm_service_install_mode") == "container":
        problems.append("trtllm_service_install_mode container cannot span hosts (the ranks are started through the node "
                        "sshd): use venv or preinstalled")
    count = len(instances) if _is_list(instances) else 0
    if count != 1:
        problems.append("an instance over %s hosts is one per host: trtllm_service_instances has %d" % (nodes, count))
    if not _matches("^/", get("trtllm_service_mpirun_bin")):
        problems.append("trtllm_service_mpirun_bin %s must be an absolute path" % _text(get("trtllm_service_mpirun_bin")))
    launch = get("trtllm_service_llmapi_launch_bin")
    if launch and not _matches("^/", launch):
        problems.append("trtllm_service_llmapi_launch_bin %s must be an absolute path" % _text(launch))
    return problems


def trtllm_serve_problems(values, plan, owned_flags):
    """trtllm-serve's flags and extra_llm_api_options (the preset's with the variables over them,
    `plan`) against the option set of the pinned TensorRT-LLM (trtllm.serve_problems)."""
    name = values.get("trtllm_service_option_set")
    option_set = trtllm_options.OPTION_SETS.get(name) if isinstance(name, str) else None
    if option_set is None:
        return ["trtllm_service_option_set %s is not one of %s" % (_text(name), ", ".join(sorted(trtllm_options.OPTION_SETS)))]
    flags, options = plan.get("flags") or {}, plan.get("extra_llm_api_options") or {}
    if not isinstance(flags, dict) or not isinstance(options, dict):
        return ["trtllm_service_flags and trtllm_service_extra_llm_api_options must be mappings"]
    problems, _warnings = trtllm.serve_problems(flags, options, option_set, values.get("trtllm_service_extra_option_keys") or (),
                                                tuple(owned_flags), "trtllm_service_flags", "trtllm_service_extra_llm_api_options")
    return problems


def trtllm_fit_problems(values, plan, context):
    """(problems, note): the plan against the host's GPUs (`gpu`: llmfleet_gpu; trtllm.fit_problems).
    A host without a GPU where llmfleet_require_gpu is false (labs, tests) skips it, saying so."""
    gpu = context.get("gpu") or _NO_GPU
    host = context.get("host") or "this host"
    if not (gpu.get("present") or context.get("require_gpu", True)):
        return [], ("trtllm_service: the fit check is skipped on %s: it has no NVIDIA GPU and llmfleet_require_gpu is false."
                    % host)
    instances = plan.get("instances") if _is_list(plan.get("instances")) else []
    if any(not isinstance(item, dict) or not _is_list(item.get("gpus")) for item in instances):
        return [], None  # trtllm_service_instances says what is wrong with them
    fit = {"tp_size": _as_int(plan.get("tp_size")), "pp_size": _as_int(plan.get("pp_size")),
           "ep_size": _as_int(plan.get("ep_size")), "nodes": _as_int(plan.get("nodes")),
           "instances": [item["gpus"] for item in instances], "weights_gib": plan.get("weights_gib"),
           "kv_fraction": plan.get("kv_fraction"), "min_driver_branch": values.get("trtllm_service_min_driver_branch")}
    try:
        return trtllm.fit_problems(fit, gpu, host), None
    except (TypeError, ValueError) as exc:
        raise ValueError("the serving plan cannot be judged: %s" % exc)


# -- nginx_tls --------------------------------------------------------------------------------
def nginx_tls_upstreams(values, context):
    """The edge's upstreams (trtllm_service publishes them, so site.yml knows them only once that
    role ran: the edge judges them again at its start) and the status port against every port."""
    j = Judge(values)
    upstreams = values.get("nginx_tls_upstreams")
    upstreams = upstreams if _is_list(upstreams) else []
    ports = [item.get("port") if isinstance(item, dict) else None for item in upstreams]
    integers = [p for p in ports if isinstance(p, int) and not isinstance(p, bool)]
    if not _is_list(values.get("nginx_tls_upstreams")) or any(not isinstance(i, dict) or "name" not in i for i in upstreams) \
            or len(integers) != len(ports) or any(not 1 <= p <= 65535 for p in integers) or len(set(ports)) != len(ports):
        j.problems.append("nginx_tls_upstreams: every entry needs a name and a port (1-65535), ports unique: %s"
                          % show(values.get("nginx_tls_upstreams")))
    status = values.get("nginx_tls_status_port")
    number = _int(status)
    edge = [_int(values.get("nginx_tls_https_port")), _int(values.get("nginx_tls_http_port"))]
    if number is None or not 0 <= number <= 65535 or (number > 0 and (number in edge or number in integers)):
        j.problems.append("nginx_tls_status_port %s is not 0 or a loopback port other than the edge's and the upstreams' ports"
                          % status)
    return j.problems, j.notes


def nginx_tls(values, context):
    j = Judge(values)
    j.problems.extend(nginx_tls_upstreams(values, context)[0])
    j.integer("nginx_tls_upstream_keepalive", low=0, accepted="connections, 0 or more")
    j.integer("nginx_tls_upstream_max_fails", low=0, accepted="a count, 0 or more (0: never mark an instance down)")
    j.integer("nginx_tls_upstream_fail_timeout", low=1, accepted="seconds, at least 1")
    if values.get("nginx_tls_certificate_source") == "internal_ca":
        j.integer("nginx_tls_internal_cert_renew_days", low=1, accepted="days, at least 1")
    j.names("nginx_tls_internal_cert_ips", _IP, "IP addresses")
    j.absolute_path("nginx_tls_internal_ca_dir", empty=False, what="an absolute directory on the controller")
    j.problems.extend(nginx_tls_route_problems(values.get("nginx_tls_routes"), values.get("nginx_tls_route_limits"),
                                               values.get("nginx_tls_health_path")))
    return j.problems, j.notes


ROUTE_KEYS = ("path", "group")
ROUTE_LIMIT_KEYS = {"rate_per_second": 1, "burst": 0, "max_streams_per_client": 1}
_ROUTE_PATH = r"^/[A-Za-z0-9._/-]*$"
_ROUTE_GROUP = r"^[a-z][a-z0-9_]{0,31}$"


def nginx_tls_route_problems(routes, limits, health_path=None):
    """The edge's public routes (`nginx_tls_routes`: exact paths, each optionally in a limit group)
    and the groups' limits (`nginx_tls_route_limits`): shapes, unique paths, no clash with the
    health route, every group a route names has limits, and the limits are counts."""
    problems = []
    limits = limits if limits is not None else {}
    if not isinstance(limits, dict):
        return ["nginx_tls_route_limits must be a mapping of group name to {rate_per_second, burst, max_streams_per_client}"]
    for group, spec in limits.items():
        where = "nginx_tls_route_limits.%s" % group
        if not isinstance(group, str) or not _matches(_ROUTE_GROUP, group):
            problems.append("%s: a group name is lower-case letters, digits and _ (at most 32, a letter first)" % where)
        if not isinstance(spec, dict) or not spec:
            problems.append("%s must name at least one of %s" % (where, ", ".join(ROUTE_LIMIT_KEYS)))
            continue
        unknown = sorted(set(spec) - set(ROUTE_LIMIT_KEYS))
        if unknown:
            problems.append("%s: unknown key(s) %s; a group has %s" % (where, ", ".join(map(str, unknown)), ", ".join(ROUTE_LIMIT_KEYS)))
        for key, low in ROUTE_LIMIT_KEYS.items():
            if key in spec and (_int(spec[key]) is None or _int(spec[key]) < low):
                problems.append("%s.%s %s must be a whole number, at least %d" % (where, key, _text(spec[key]), low))
    if not _is_list(routes) or not routes:
        return problems + ["nginx_tls_routes must be a non-empty list of {path, group} (the routes the edge serves)"]
    paths = []
    for index, route in enumerate(routes):
        where = "nginx_tls_routes[%d]" % index
        if not isinstance(route, dict) or "path" not in route:
            problems.append("%s must be a mapping with a path (and an optional group): %s" % (where, show(route)))
            continue
        unknown = sorted(set(route) - set(ROUTE_KEYS))
        if unknown:
            problems.append("%s: unknown key(s) %s; a route has path and an optional group" % (where, ", ".join(map(str, unknown))))
        path = route["path"]
        if not isinstance(path, str) or not _matches(_ROUTE_PATH, path) or "/.." in path or "/./" in path:
            problems.append("%s.path %s must be an exact path: /, then A-Z a-z 0-9 . _ / -" % (where, show(path)))
        paths.append(path)
        group = route.get("group")
        if group is not None and group not in limits:
            problems.append("%s.group %s has no limits in nginx_tls_route_limits (groups there: %s)"
                            % (where, show(group), ", ".join(sorted(map(str, limits))) or "none"))
    duplicates = sorted(set(str(p) for p in paths if paths.count(p) > 1))
    if duplicates:
        problems.append("nginx_tls_routes: each path once: %s" % ", ".join(duplicates))
    if health_path is not None and health_path in paths:
        problems.append("nginx_tls_routes: %s is the edge's health route (nginx_tls_health_path)" % health_path)
    return problems


# -- monitoring -------------------------------------------------------------------------------
def monitoring(values, context):
    j = Judge(values)
    j.integer("monitoring_dcgm_exporter_interval_ms", low=100, accepted="milliseconds, at least 100")
    j.integer("monitoring_alert_drift_stale_hours", low=1, accepted="hours, at least 1")
    address = values.get("monitoring_prometheus_listen_address")
    if not isinstance(address, str) or not _IPV4.match(address):
        j.add("monitoring_prometheus_listen_address", "is not an IPv4 address (0.0.0.0: all, 127.0.0.1: loopback)")
    j.absolute_path("monitoring_dcgm_exporter_image_archive", what="the archive's absolute path on the host")
    digest = values.get("monitoring_dcgm_exporter_image_archive_sha256")
    if digest and not (isinstance(digest, str) and _SHA256.match(digest)):
        j.add("monitoring_dcgm_exporter_image_archive_sha256", "is not accepted; give 64 lower-case hex digits, or empty")
    return j.problems, j.notes


# -- cuda_toolkit -----------------------------------------------------------------------------
def cuda_toolkit(values, context):
    j = Judge(values)
    version = values.get("cuda_toolkit_version")
    if not isinstance(version, str) or not re.match(r"^([0-9]+[.][0-9]+)?$", version):
        j.problems.append(
            'cuda_toolkit_version: "%s" is not a toolkit release. Accepted: "" (the default of the source on this '
            'release) or "X.Y" as a quoted string, e.g. "13.0" or "12.8" (unquoted, YAML reads 12.10 as the number 12.1)'
            % version)
    if context.get("offline") and values.get("cuda_toolkit_source") == "cuda_repo":
        j.problems.append(
            "cuda_toolkit_source: cuda_repo adds the CUDA repository of NVIDIA, on the internet, but llmfleet_offline "
            "is true. Accepted with llmfleet_offline: offline (the apt repository of the offline bundle), debian or auto")
    return j.problems, j.notes


# -- site.yml's own settings ------------------------------------------------------------------
_BATCH = "a number of hosts (1 or more) or a share like \"25%\" (1% to 100%)"


def _batch_ok(value):
    number = _int(value)
    if number is not None:
        return number >= 1
    match = re.match(r"^\s*([0-9]+(\.[0-9]+)?)\s*%\s*$", value) if isinstance(value, str) else None
    return bool(match) and 0 < float(match.group(1)) <= 100


def site(values, context):
    """site.yml's play keywords that come from extra vars (the serving play's batches and the
    share of a batch that may fail): judged in play 1, not when the serving play starts after the
    earlier plays changed the hosts. A value left out (None) takes site.yml's default."""
    j = Judge(values)
    batch = values.get("llmfleet_serve_batch")
    if batch is not None and not _batch_ok(batch):
        j.add("llmfleet_serve_batch", "is not accepted; give %s" % _BATCH)
    serial = values.get("llmfleet_serve_serial")
    if serial is not None:
        items = serial if _is_list(serial) else [serial]
        if not items or not all(_batch_ok(item) for item in items):
            j.add("llmfleet_serve_serial", "is not accepted; give a list of batches, each %s (e.g. [1, \"25%%\"])" % _BATCH)
    failing = values.get("llmfleet_serve_max_fail_percentage")
    number = _float(failing) if failing is not None else 0
    if number is None or not 0 <= number <= 100:
        j.add("llmfleet_serve_max_fail_percentage", "is not accepted; give a percentage from 0 to 100 (0: any failed host stops the run)")
    return j.problems, j.notes


# -- offline_repo: its checks are in its validate_inputs.yml ---------------------------------
def _none(values, context):
    return [], []


ROLES = {
    "ubuntu_base": ubuntu_base,
    "gpu_tuning": gpu_tuning,
    "nvidia_driver": nvidia_driver,
    "nvidia_container_toolkit": nvidia_container_toolkit,
    "trtllm_service": trtllm_service,
    "nginx_tls": nginx_tls,
    "nginx_tls_upstreams": nginx_tls_upstreams,
    "monitoring": monitoring,
    "offline_repo": _none,
    "site": site,
    "cuda_toolkit": cuda_toolkit,
}


def input_problems(role, values, spec=None, context=None):
    """{problems, notes, types_ok} of one role's variables: the argument spec's problems first
    (and only those when there are any, types_ok false: the rules below, and a role's own checks
    in YAML, assume the types), then the role's rules. `context` may be a function returning it:
    called only when the types are right (what a role derives from its variables assumes them)."""
    if role not in ROLES:
        raise ValueError("no input rules for role %s (known: %s)" % (role, ", ".join(sorted(ROLES))))
    problems = spec_problems(spec or {}, values)
    if problems:
        return {"problems": problems, "notes": [], "types_ok": False}
    context = context() if callable(context) else context
    problems, notes = ROLES[role](values, dict(context or {}))
    return {"problems": problems, "notes": notes, "types_ok": True}


# -- site.yml ---------------------------------------------------------------------------------
def roles_to_check(roles, run_tags=None, skip_tags=None, always=()):
    """The roles of `roles` that a site.yml run with these --tags/--skip-tags applies: every one
    without --tags; with --tags, a role whose name, or one of its concern tags (role:concern), is
    asked for (or 'tagged'), and the roles tagged always. A role in --skip-tags is left out."""
    run = set(run_tags or ["all"])
    skip = set(skip_tags or [])
    chosen = []
    for role in roles:
        if role in skip:
            continue
        if role in always or run & {"all", "tagged"} or role in run or any(t.startswith(role + ":") for t in run):
            chosen.append(role)
    return chosen


_SITE_ROLE_KEYS = ("role", "group", "switch", "always", "check", "gpu_steps")


def site_role_list_problems(role_list):
    """What is wrong with site.yml's list of roles (playbooks/vars/site.yml, llmfleet_site_role_list):
    each entry a role and the inventory group of its play, a switch only an llmfleet_* name (its
    default is fleet_defaults'), each role once."""
    if not _is_list(role_list):
        return ["llmfleet_site_role_list must be a list of {role, group, ...}"]
    problems, seen = [], []
    for number, entry in enumerate(role_list):
        if not isinstance(entry, dict) or not isinstance(entry.get("role"), str) or not isinstance(entry.get("group"), str):
            problems.append("llmfleet_site_role_list entry %d %s needs a role and a group" % (number, show(entry)))
            continue
        unknown = sorted(set(entry) - set(_SITE_ROLE_KEYS))
        if unknown:
            problems.append("llmfleet_site_role_list: %s has unknown keys %s (known: %s)"
                            % (entry["role"], ", ".join(unknown), ", ".join(_SITE_ROLE_KEYS)))
        if "switch" in entry and not (isinstance(entry["switch"], str) and entry["switch"].startswith("llmfleet_")):
            problems.append("llmfleet_site_role_list: %s has the switch %s; give an llmfleet_* setting" % (entry["role"], show(entry["switch"])))
        if entry["role"] in seen:
            problems.append("llmfleet_site_role_list: %s is listed twice" % entry["role"])
        seen.append(entry["role"])
    return problems


def site_roles(role_list, switches, groups=None):
    """The roles of site.yml's list that run (in its order, the plays' order): a role without a
    switch always, one with a switch when it is on (`switches`: switch -> its value here, which
    fleet_defaults' default gives every switch); given `groups` (a host's group_names), only those
    whose play's group is one of them. None: {group: roles} for every group."""
    problems = site_role_list_problems(role_list)
    if problems:
        raise ValueError("; ".join(problems))
    switches = switches or {}
    unset = sorted(set(entry["switch"] for entry in role_list if "switch" in entry) - set(switches))
    if unset:
        raise ValueError("%s without a value: fleet_defaults gives every switch its default, so a play that reads "
                         "site.yml's list of roles lists llmfleet.deepseek.fleet_defaults first" % ", ".join(unset))
    on = [entry for entry in role_list if "switch" not in entry or boolean(switches[entry["switch"]], strict=False)]
    if groups is None:
        by_group = {}
        for entry in on:
            by_group.setdefault(entry["group"], []).append(entry["role"])
        return by_group
    return [entry["role"] for entry in on if entry["group"] in groups]
