# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver-stack readers and the coherence rules of the nvidia_driver role, as pure functions.

Parsers take the text a tool printed (mokutil, modinfo, dpkg-query, dkms, systemctl) so that the
unit tests feed them real outputs; `coherence()` turns the readings into problems (with the fix)
and reboot reasons. No Ansible here: the module nvidia_driver_info does the I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# EFI global variable that says whether the firmware enforces Secure Boot (1 byte after 4 bytes
# of attributes).
SECURE_BOOT_EFIVAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def upstream_version(package_version):
    """'580.95.05-0ubuntu0.24.04.2' -> '580.95.05'; '1:535.261.03-1' -> '535.261.03'; None stays None."""
    if not package_version:
        return None
    text = package_version.split(":", 1)[-1]
    return text.split("-", 1)[0].split("+", 1)[0]


def branch_of(version):
    """'580.95.05' -> '580'."""
    if not version:
        return None
    return version.split(".", 1)[0]


def version_matches(actual, wanted):
    """Whether upstream version `actual` satisfies `wanted`: a branch ('580'), a prefix ('580.95')
    or an exact version ('580.95.05')."""
    if not actual or not wanted:
        return False
    actual_parts = actual.split(".")
    wanted_parts = wanted.split(".")
    return actual_parts[:len(wanted_parts)] == wanted_parts


def parse_mokutil_sb_state(text, rc=0):
    """Secure Boot state from `mokutil --sb-state`.

    Returns {'enabled': bool or None, 'enforcing': bool or None, 'detail': str}. `enforcing` is
    what matters for kernel modules: enabled and not switched off in shim ("validation is
    disabled in shim"). None means mokutil could not tell.
    """
    lowered = (text or "").lower()
    detail = " ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    if "secureboot enabled" in lowered:
        enforcing = "validation is disabled" not in lowered
        return {"enabled": True, "enforcing": enforcing, "detail": detail}
    if "secureboot disabled" in lowered:
        return {"enabled": False, "enforcing": False, "detail": detail}
    if "doesn't support secure boot" in lowered or "not supported" in lowered or "efi variables are not supported" in lowered:
        return {"enabled": False, "enforcing": False, "detail": detail or "no EFI Secure Boot on this system"}
    return {"enabled": None, "enforcing": None, "detail": detail or ("mokutil exited %s" % rc)}


def parse_secure_boot_efivar(data):
    """Secure Boot state from the raw bytes of the SecureBoot EFI variable (4 attribute bytes and
    one value byte)."""
    if data is None:
        return {"enabled": False, "enforcing": False, "detail": "no SecureBoot EFI variable (legacy BIOS boot or no efivarfs)"}
    if len(data) < 5:
        return {"enabled": None, "enforcing": None, "detail": "SecureBoot EFI variable has %d bytes" % len(data)}
    value = data[4] if isinstance(data[4], int) else ord(data[4])
    enabled = value == 1
    return {"enabled": enabled, "enforcing": enabled, "detail": "SecureBoot EFI variable = %d" % value}


def parse_modinfo(text):
    """Fields of `modinfo nvidia` for the running kernel: version, filename, license, signer and
    the flavour (the open modules are 'Dual MIT/GPL', the proprietary one 'NVIDIA')."""
    fields = {}
    for line in (text or "").splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = key.strip()
        if key in ("version", "filename", "license", "signer", "vermagic") and key not in fields:
            fields[key] = value.strip()
    if not fields.get("version"):
        return None
    licence = fields.get("license", "")
    fields["flavour"] = "open" if "MIT" in licence or "GPL" in licence else "proprietary"
    return {
        "version": fields.get("version"),
        "filename": fields.get("filename"),
        "flavour": fields["flavour"],
        "signer": fields.get("signer"),
        "vermagic": fields.get("vermagic"),
    }


def parse_dpkg_query(text):
    """Lines of `dpkg-query -W -f='${binary:Package}\\t${Version}\\t${db:Status-Abbrev}\\n'`.

    Returns {name: {'version', 'installed', 'held', 'status'}}; the architecture suffix
    (':amd64') is dropped. Packages that dpkg only remembers (no version, 'un'/'rc') count as not
    installed.
    """
    packages = {}
    for line in (text or "").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        name = parts[0].split(":", 1)[0]
        status = parts[2].strip()
        installed = len(status) >= 2 and status[1] in ("i", "U", "F", "W", "t") and bool(parts[1])
        packages[name] = {
            "version": parts[1] or None,
            "installed": installed,
            "held": status[:1] == "h",
            "status": status,
        }
    return packages


def parse_dkms_status(text):
    """`dkms status` lines ('nvidia-current-open/535.261.03, 6.1.0-41-amd64, x86_64: installed',
    and the older 'nvidia, 535.1, 6.1.0, x86_64: installed') as a list of dicts."""
    found = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or ":" not in line:
            continue
        head, state = line.rsplit(":", 1)
        state = state.strip().split(" ", 1)[0]
        parts = [p.strip() for p in head.split(",")]
        if "/" in parts[0]:
            module, version = parts[0].split("/", 1)
            rest = parts[1:]
        else:
            module = parts[0]
            version = parts[1] if len(parts) > 1 else None
            rest = parts[2:]
        found.append({
            "module": module,
            "version": version,
            "kernel": rest[0] if rest else None,
            "arch": rest[1] if len(rest) > 1 else None,
            "state": state,
        })
    return found


def parse_systemctl_show(text):
    """`systemctl show -p Id,LoadState,ActiveState,UnitFileState u1 u2` (blank-line separated)
    as {unit: {'load', 'active', 'enabled'}}."""
    units = {}
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        props = {}
        for line in block.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                props[key.strip()] = value.strip()
        if props.get("Id"):
            units[props["Id"]] = {
                "load": props.get("LoadState"),
                "active": props.get("ActiveState"),
                "enabled": props.get("UnitFileState"),
            }
    return units


def coherence(state, expect):
    """The coherence gate: is this host's driver stack in line, and if not, why and what to do.

    `state` (what nvidia_driver_info read): gpu_present, loaded {version, flavour} or None,
    on_disk {version, flavour} or None (the module the running kernel would load), nvml
    {available, driver_version, reason}, nouveau_loaded, fabric_manager {version, active} or None,
    kernel (release), modules_tree (whether /lib/modules/<kernel> exists; default True).
    `expect`: version (branch, prefix or exact; '' for any), flavour ('open', 'proprietary' or
    ''), fabric_manager (bool: must be there and at the driver's version).

    Returns {'ok': bool, 'checked': bool, 'problems': [...], 'reboot_reasons': [...],
    'reboot_required': bool, 'notes': [...]}. Without a GPU nothing can be loaded: checked is False and only the
    on-disk facts are judged by the caller.
    """
    problems = []
    reboots = []
    kernel = state.get("kernel") or "the running kernel"
    loaded = state.get("loaded") or {}
    on_disk = state.get("on_disk") or {}
    nvml = state.get("nvml") or {}
    wanted = expect.get("version") or ""
    flavour = expect.get("flavour") or ""

    if not state.get("gpu_present"):
        return {"ok": True, "checked": False, "problems": [], "reboot_reasons": [], "reboot_required": False,
                "notes": []}

    notes = []
    if not on_disk.get("version") and loaded.get("version") and not state.get("modules_tree", True):
        # The loaded module's file is not visible: /lib/modules/<kernel> is absent (a container
        # sharing its host's kernel). Judge the loaded module against the pin instead.
        notes.append("no /lib/modules/%s here (a container?): the module on disk cannot be read; "
                     "the loaded module %s is judged instead" % (kernel, loaded["version"]))
        on_disk = {"version": loaded["version"], "flavour": loaded.get("flavour")}
    if not on_disk.get("version"):
        problems.append(
            "no nvidia kernel module for %s: the DKMS build did not run or failed (are the headers "
            "for %s installed? see `dkms status` and /var/lib/dkms), or the precompiled "
            "linux-modules-nvidia package for this kernel is missing. Install the headers (or the "
            "modules package) for %s and run the role again." % (kernel, kernel, kernel))
    elif wanted and not version_matches(on_disk["version"], wanted):
        problems.append(
            "the nvidia module built for %s is %s, not %s: the driver packages and the pin disagree; "
            "run the role with the pin you want (it unholds, upgrades and holds in order)."
            % (kernel, on_disk["version"], wanted))

    if state.get("nouveau_loaded"):
        reboots.append("nouveau is loaded (it is blacklisted now; a reboot unloads it)")

    if loaded.get("version"):
        if on_disk.get("version") and loaded["version"] != on_disk["version"]:
            reboots.append("the loaded nvidia module is %s, the installed one %s" % (loaded["version"], on_disk["version"]))
        if flavour and loaded.get("flavour") and loaded["flavour"] != flavour:
            if on_disk.get("flavour") == flavour:
                reboots.append("the loaded module is the %s one, the installed one is %s" % (loaded["flavour"], flavour))
            else:
                problems.append(
                    "the %s kernel module is loaded and installed, but nvidia_driver_kernel_module wants %s"
                    % (loaded["flavour"], flavour))
    elif on_disk.get("version") and not state.get("nouveau_loaded"):
        reboots.append("no nvidia module is loaded (modprobe nvidia did not load it)")

    nvml_version = nvml.get("driver_version")
    if loaded.get("version") and not reboots:
        if not nvml.get("available"):
            problems.append("NVML does not answer: %s" % (nvml.get("reason") or "unknown reason"))
        elif nvml_version != loaded["version"]:
            problems.append(
                "Driver/library version mismatch: the kernel module is %s, NVML (user space) is %s. "
                "The driver packages were changed without the module (held packages upgraded by "
                "hand or by unattended-upgrades?): run the role to reinstall the pinned version, "
                "then reboot." % (loaded["version"], nvml_version))
        if wanted and nvml_version and not version_matches(nvml_version, wanted):
            problems.append("the driver is %s, the pin says %s: run the role to move to the pin" % (nvml_version, wanted))

    if expect.get("fabric_manager"):
        fabric = state.get("fabric_manager") or {}
        driver = nvml_version or on_disk.get("version")
        if not fabric.get("version"):
            problems.append("this host has NVSwitches but nvidia-fabricmanager is not installed: "
                            "set nvidia_driver_fabric_manager: auto or true")
        elif driver and fabric["version"] != driver:
            problems.append(
                "nvidia-fabricmanager is %s but the driver is %s: they must be the same version "
                "(GPUs stay in fabric state 'in progress' and CUDA fails). Pin both with "
                "nvidia_driver_version and run the role." % (fabric["version"], driver))
        elif not reboots and fabric.get("active") != "active":
            problems.append("nvidia-fabricmanager.service is %s: see `journalctl -u nvidia-fabricmanager`"
                            % (fabric.get("active") or "not running"))

    return {
        "ok": not problems and not reboots,
        "checked": True,
        "problems": problems,
        "reboot_reasons": reboots,
        "reboot_required": bool(reboots),
        "notes": notes,
    }
