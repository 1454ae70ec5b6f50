#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: iptables_allowlist
short_description: A declarative, atomic, lockout-safe iptables allowlist in a chain of its own
version_added: "0.1.0"
description:
  - Owns one chain (O(chain), jumped to from the first position of C(INPUT)) and makes its
    content exactly the desired allowlist, for IPv4 and IPv6. Loopback and
    C(RELATED,ESTABLISHED) traffic is accepted; for each rule, the listed sources are accepted on
    its port and every other source is handled by O(policy) on that port. Traffic to ports no
    rule names returns to C(INPUT) untouched, unless O(default_deny=true).
  - Rules with the same port and protocol are merged (their sources added up); all accepts come
    before all drops, so overlapping port ranges add up too.
  - Sources are addresses or CIDRs, IPv4 and IPv6 in one list; the family is taken from each
    entry. Each family's chain gets the accepts of its own sources and the drops of every rule,
    so a port listed with IPv4 sources only is closed to IPv6 clients.
  - With O(docker_user=true) a second chain (O(chain) with C(-INPUT) replaced by C(-DOCKER), or
    C(-DOCKER) appended) is jumped to from the first position of Docker's C(DOCKER-USER) chain and
    holds the same allowlist for published container ports, which reach containers through
    C(FORWARD) and never pass C(INPUT). It matches connections Docker translated (conntrack
    C(DNAT) state) by their original destination port, so containers' own outgoing traffic is not
    affected. C(DOCKER-USER) is created when Docker has not made it yet (Docker keeps one it finds).
  - Nothing else is ever written. Other chains and tables (Docker's, the user's own) stay as they
    are; O(state=absent) removes only the jumps and chains this module owns.
  - Ownership is marked - the first rule of every chain this module creates is the comment
    C(llmfleet-deepseek-iptables_allowlist) (a match without a target, which only counts packets). A
    chain of the owned names that exists without it (fail2ban's, a site's own, an empty one
    someone made) is refused naming the chain, in check mode too, for every O(state), so it is
    never flushed, filled or deleted. Chains an earlier version of this module made (no marker,
    nothing but the rules it renders) are adopted and get the marker at the next change.
  - The iptables backend (nf_tables or legacy) is the one the host's C(iptables) command uses; the
    module then calls that backend's own C(*-save)/C(*-restore) commands for both families and
    never the other one's. It warns when the other backend also holds rules.
  - Atomic - the change is one C(iptables-restore --noflush) transaction per family, first
    checked with C(iptables-restore --test) (in check mode too), then applied and read back.
  - Lockout-safe - with O(ssh_guard=true) the source address of the SSH connection this task
    runs over (read from C(SSH_CONNECTION) of the module's process or its ancestors) is always
    accepted on that connection's port, ahead of every drop. With a local connection there is
    nothing to guard and the result says so.
  - Rollback - with O(rollback_timeout) above zero, the previous state of what the module owns is
    saved and a watcher (a transient systemd unit, or a detached process without systemd) restores
    it unless the controller confirms over a new connection within that many seconds. The
    collection's action plugin for this module makes that confirmation (it closes the current
    connection, e.g. SSH's ControlPersist master, and runs one command over a fresh one); a change
    that cuts the controller off fails the task and comes back by itself.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  rules:
    description:
      - The allowlist. Each entry has C(port) (an int or a C("from:to") range, 1-65535),
        C(proto) (C(tcp) or C(udp), default C(tcp)) and C(sources) (a list of IPv4/IPv6
        addresses or CIDRs; an empty list closes the port to every source).
      - An optional C(name) says where the rule comes from; error messages quote it.
      - A source with host bits set (C(10.0.0.1/8)) or a host name is refused. An empty source
        list on the SSH port (O(ssh_port), TCP) is refused.
    type: list
    elements: dict
    default: []
  chain:
    description:
      - The chain this module owns (1-21 letters, digits, C(_), C(.), C(-)).
      - Refused on the controller - built-in chains, iptables target names (C(DROP), C(RETURN),
        C(LOG), ...), names ending in C(-DOCKER) (the form of this module's C(DOCKER-USER) chain),
        and the chain names of other tools (C(f2b-), C(ufw-), C(DOCKER), C(KUBE-), Calico,
        Cilium, firewalld, libvirt, ...).
      - Refused on the host - an existing chain of this name (or of its C(-DOCKER) companion)
        that this module did not make.
    type: str
    default: LLMFLEET-INPUT
  policy:
    description:
      - What happens to sources a rule does not list, on that rule's port (and to everything
        else with O(default_deny=true)).
      - V(reject) answers TCP with a reset and UDP/other traffic with ICMP port unreachable.
    type: str
    default: drop
    choices: [drop, reject]
  ssh_guard:
    description:
      - Accept the current SSH connection's source address on its port before any drop, so this
        run's controller keeps its way in. The address is in the result (RV(ssh_guard)).
    type: bool
    default: true
  ssh_port:
    description:
      - The SSH port. A rule on it must list sources, and O(default_deny=true) needs a rule on it
        (the next run may come from another controller address than this one).
      - The guard accepts the port of the connection it found, which is this one unless SSH
        listens elsewhere.
    type: int
    default: 22
  docker_user:
    description: Also apply the allowlist to published container ports through C(DOCKER-USER).
    type: bool
    default: false
  rollback_timeout:
    description:
      - Seconds after a change within which the controller must confirm it can reach the host
        over a new connection; otherwise the previous rules come back. V(0) turns the rollback off.
      - Must be longer than the connection timeout plus a module run (checked by the action
        plugin), so that a working connection is never rolled back.
    type: int
    default: 30
  default_deny:
    description:
      - Drop (or reject, by O(policy)) everything the rules do not accept, after the SSH guard.
        ICMPv6 neighbour discovery and error messages stay accepted (IPv6 stops working without
        them); ICMPv4 errors of accepted connections pass as C(RELATED).
    type: bool
    default: false
  state:
    description:
      - V(present) makes the owned chains exactly the allowlist.
      - V(absent) removes the jumps and chains this module owns, nothing else.
    type: str
    default: present
    choices: [present, absent]
  persist_dir:
    description:
      - A directory where the module keeps, per family, an C(iptables-restore --noflush) file of
        the owned chains (C(rules.ipv4), C(rules.ipv6); no jumps), for a boot-time loader (the
        C(llmfleet.deepseek.firewall) role's unit). Written (mode C(0600), atomically) only
        after the rules took, put back by the rollback with the rules, removed with
        O(state=absent); a file that differs from the rules counts as a change and shows in the diff.
      - Unset - no files (RV(persist) still has their content).
    type: path
  ssh_connection:
    description:
      - The C(SSH_CONNECTION) value of the task's connection (C(client_ip client_port server_ip
        server_port)), for the guard. The action plugin fills it in, read over the task's
        connection without C(become) (which drops it from the environment); set it only to guard
        another address than the one the module finds.
      - Empty - the module's own environment, then its ancestors' processes.
      - A value that is not four fields with an IP address first and a port last is refused (a
        guard that cannot work is an error, never silently off). Over SSH, a guard that finds no
        connection is a warning that says why.
    type: str
    default: ""
  validate_only:
    description:
      - Only check the inputs and return the normalised RV(rules). The action plugin does this
        on the controller, without connecting to the host (every run starts with this check, so
        bad input fails before anything runs there). Every option is checked there, typed
        strictly (C(rollback_timeout=soon), C(ssh_guard=maybe) are refused, whatever the
        connection); only whether a chain on the host is this module's needs the host.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the rules and computes the exact transaction (checked with C(iptables-restore --test)); applies nothing.
  diff_mode:
    support: full
    description: The owned chains and jumps, per family, before and after, as C(iptables-save) prints them; and each persisted file that changes.
  platform:
    description: Linux with iptables 1.8 (nf_tables or legacy backend) and conntrack.
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.posix
requirements:
  - C(iptables) 1.8 or later on the managed host (C(ip6tables) for IPv6; without it, or with IPv6
    off in the kernel, only IPv4 is managed and the result says so).
notes:
  - Rules live in the kernel; O(persist_dir) keeps files a boot-time loader restores (the
    C(llmfleet.deepseek.firewall) role's unit), and RV(persist) holds their content.
  - If a jump to the owned chain already exists somewhere in C(INPUT), it is left where it is (a
    tool that inserts its own jump first, such as fail2ban, is not fought over); a missing one is
    inserted first, duplicates are removed.
seealso:
  - name: Docker - packet filtering and firewalls
    description: Why published ports bypass INPUT, and DOCKER-USER.
    link: https://docs.docker.com/engine/network/packet-filtering-firewalls/
  - module: community.general.iptables_state
    description: The idea behind the rollback.
  - module: ansible.builtin.iptables
"""

EXAMPLES = r"""
- name: HTTPS from the edge networks only, SSH from the bastions, with Docker's published ports
  llmfleet.deepseek.iptables_allowlist:
    rules:
      - {port: 443, proto: tcp, sources: [10.20.0.0/16, "2001:db8:20::/48"]}
      - {port: 22, proto: tcp, sources: [10.0.0.10, 10.0.0.11]}
      - {port: "9100:9400", proto: tcp, sources: [10.30.0.5]}
    docker_user: true

- name: Everything not listed is dropped (needs a rule on the SSH port)
  llmfleet.deepseek.iptables_allowlist:
    rules:
      - {port: 22, sources: [10.0.0.0/24]}
      - {port: 443, sources: [10.20.0.0/16]}
    default_deny: true

- name: Remove the allowlist (only what the module owns)
  llmfleet.deepseek.iptables_allowlist:
    state: absent
"""

RETURN = r"""
backend:
  description: The iptables backend used for both families.
  returned: always
  type: str
  sample: nft
chain:
  description: The chain owned in C(INPUT).
  returned: always
  type: str
  sample: LLMFLEET-INPUT
docker_chain:
  description: The chain owned in C(DOCKER-USER) (present with O(docker_user=true)).
  returned: always
  type: str
  sample: LLMFLEET-DOCKER
families:
  description: Per family (C(ipv4), C(ipv6)) - whether it is managed, changed, and the rule count of the owned chains after the run.
  returned: always
  type: dict
  sample: {"ipv4": {"managed": true, "changed": true, "rules": 7}, "ipv6": {"managed": false, "reason": "IPv6 is off in the kernel"}}
rules:
  description: The rules as applied (merged by port and protocol, sources normalised and split by family).
  returned: always
  type: list
  elements: dict
  sample: [{"port": "443", "proto": "tcp", "sources": {"ipv4": ["10.20.0.0/16"], "ipv6": []}}]
ssh_guard:
  description: What the SSH guard found and accepted.
  returned: always
  type: dict
  sample: {"enabled": true, "address": "10.0.0.10/32", "port": 22, "reason": "SSH_CONNECTION of the task's connection"}
rollback:
  description: Whether a rollback was armed for this change, its timeout, and (from the action plugin) whether the controller confirmed.
  returned: always
  type: dict
  sample: {"armed": true, "timeout": 30, "confirmed": true}
persist:
  description: Per family, an C(iptables-restore --noflush) file of the owned chains (no jumps), for loading at boot; empty for O(state=absent).
  returned: always
  type: dict
  sample: {"ipv4": "*filter\n:LLMFLEET-INPUT - [0:0]\n-A LLMFLEET-INPUT -m comment --comment llmfleet-deepseek-iptables_allowlist\n...\nCOMMIT\n"}
commands:
  description: Per family, the save and restore commands of the backend in use (for the boot-time loader).
  returned: always
  type: dict
  sample: {"ipv4": {"save": "/usr/sbin/iptables-nft-save", "restore": "/usr/sbin/iptables-nft-restore", "iptables": "/usr/sbin/iptables-nft"}}
files:
  description: The persisted files (under O(persist_dir)) that were (or in check mode would be) written or removed.
  returned: when a file differs
  type: list
  elements: str
transactions:
  description: Per family, the iptables-restore input that was (or in check mode would be) applied; absent for a family without change.
  returned: changed
  type: dict
"""

import copy
import json
import os
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmfleet.deepseek.plugins.module_utils import c_locale
from ansible_collections.llmfleet.deepseek.plugins.module_utils import iptables as ipt
from ansible_collections.llmfleet.deepseek.plugins.module_utils import iptables_rollback

ROLLBACK_DIR = "/run/llmfleet/firewall"


class Allowlist(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.warnings = []

    # --- reading ------------------------------------------------------------------------------

    def _run(self, argv, data=None, check=True):
        """Every command of the module, in the C locale (iptables-save's and --version's output is
        parsed; the others' messages then read the same on every host)."""
        rc, out, err = c_locale.run(self.module, argv, data=data, binary_data=True)
        if check and rc != 0:
            self.module.fail_json(msg="%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out).strip()))
        return rc, out, err

    def backend(self):
        iptables = self.module.get_bin_path("iptables")
        if iptables is None:
            if self.p["state"] == "absent" and not self.files_plan({}):
                self.module.exit_json(changed=False, msg="iptables is not installed: there is nothing to remove")
            if self.module.check_mode:
                # --check on a fresh host, before the package that would be installed first.
                guard = {"enabled": self.p["ssh_guard"], "address": None, "port": None,
                         "reason": "iptables is not installed yet"}
                self.module.exit_json(
                    changed=True, backend=None, chain=self.p["chain"], docker_chain=ipt.docker_chain_name(self.p["chain"]),
                    families={}, rules=[], persist={}, commands={}, ssh_guard=guard,
                    rollback={"armed": False, "timeout": self.p["rollback_timeout"]},
                    msg="iptables is not installed yet: the whole allowlist would be created once it is")
            self.module.fail_json(msg="iptables is not installed on this host: install the iptables package")
        real = os.path.basename(os.path.realpath(iptables))
        if "nft" in real:
            return "nft"
        if "legacy" in real:
            return "legacy"
        _rc, out, _err = self._run([iptables, "--version"])
        return "nft" if "nf_tables" in out else "legacy"

    def commands(self, backend):
        found = {}
        for family, base in (("ipv4", "iptables"), ("ipv6", "ip6tables")):
            cmds = {}
            for tool in ("save", "restore", ""):
                name = base + ("-" + tool if tool else "")
                path = self.module.get_bin_path("%s-%s%s" % (base, backend, "-" + tool if tool else ""))
                if path is None:
                    # iptables < 1.8 ships unsuffixed tools only: they are the legacy backend.
                    path = self.module.get_bin_path(name) if backend == "legacy" else None
                cmds[tool or "iptables"] = path
            found[family] = cmds if all(cmds.values()) else None
        if found["ipv4"] is None:
            self.module.fail_json(msg="iptables-%s-save/-restore not found: install the iptables package" % backend)
        return found

    def mixed_backends(self, backend):
        """Rules in the other backend apply too; say so (we never write there). On an nf_tables
        host legacy tables show in /proc/net/ip_tables_names, so the common case costs a file read."""
        other = "legacy" if backend == "nft" else "nft"
        if backend == "nft":
            try:
                with open("/proc/net/ip_tables_names") as f:
                    if not f.read().split():
                        return
            except (IOError, OSError):
                return
        save = self.module.get_bin_path("iptables-%s-save" % other)
        if save is None:
            return
        _rc, out, _err = self._run([save], check=False)
        count = sum(1 for line in out.splitlines() if line.startswith("-A "))
        if count:
            self.warnings.append(
                "iptables-%s also holds %d rule(s); they apply as well as the %s rules this module "
                "manages. Move them to one backend; never mix the two." % (other, count, backend))

    def read(self, cmds):
        _rc, out, _err = self._run([cmds["save"], "-t", "filter"])
        table = ipt.parse_save(out).get("filter", {"chains": {}, "rules": []})
        return table

    def refuse_foreign(self, family, table):
        """A chain of the owned names that this module did not make (no marker rule, not the shape
        an earlier version rendered) is another tool's: fail before anything is applied."""
        foreign = ipt.foreign_chains(table, self.p["chain"])
        if foreign:
            self.module.fail_json(
                msg="%s: refusing to %s: %s. This module only manages chains it created (their first "
                    "rule is the comment %s); nothing was changed. Choose another chain (option chain), "
                    "or, if the chain is a leftover of yours, delete it by hand first."
                    % (family, "delete" if self.p["state"] == "absent" else "flush and fill",
                       "; ".join("chain %s was not made by this module (%s)" % (name, why) for name, why in foreign),
                       ipt.MARKER_COMMENT),
                chain=self.p["chain"], foreign_chains=[name for name, _why in foreign])

    # --- the SSH guard --------------------------------------------------------------------------

    def ssh_connection(self):
        """SSH_CONNECTION as the action plugin read it in the login shell (become drops it from
        the environment), else of this process, else of the closest ancestor that has it and
        whose environment can be read."""
        if self.p["ssh_connection"]:
            return self.p["ssh_connection"], "SSH_CONNECTION of the task's login shell"
        value = os.environ.get("SSH_CONNECTION")
        if value:
            return value, "SSH_CONNECTION of the module's environment"
        pid = os.getppid()
        for _hop in range(32):
            if pid <= 1:
                break
            try:
                with open("/proc/%d/stat" % pid) as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (IOError, OSError, ValueError, IndexError):
                break
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except (IOError, OSError):
                env = []  # sudo is not dumpable; without CAP_SYS_PTRACE other users' are hidden
            for item in env:
                if item.startswith(b"SSH_CONNECTION="):
                    return item.split(b"=", 1)[1].decode("ascii", "replace"), \
                        "SSH_CONNECTION of process %d (an ancestor of the module)" % pid
            pid = parent
        return None, None

    def guard(self):
        info = {"enabled": self.p["ssh_guard"], "address": None, "port": None}
        if not self.p["ssh_guard"]:
            info["reason"] = "ssh_guard is false"
            return None, info
        if self.p["state"] == "absent":
            info["reason"] = "state is absent: nothing is dropped"
            return None, info
        value, where = self.ssh_connection()
        found = ipt.parse_ssh_connection(value) if value else None
        if found is None:
            info["reason"] = ("no SSH connection found (a local or container connection): "
                              "there is nothing to guard")
            return None, info
        net, port = found
        info.update(address=net.with_prefixlen, port=port, reason=where)
        if port != self.p["ssh_port"]:
            self.warnings.append(
                "the SSH connection came in on port %d, not ssh_port %d: the guard accepts port %d"
                % (port, self.p["ssh_port"], port))
        return (net, port), info

    @staticmethod
    def covered(guard, rules):
        """The rule source that already accepts the guarded address on its port, if any: then no
        guard line is added, and runs from other controllers in that range render the same rules."""
        net, port = guard
        for rule in rules:
            if rule["proto"] == "tcp" and rule["port"][0] <= port <= rule["port"][1]:
                for src in rule["sources"][ipt.family_of(net)]:
                    if net.subnet_of(src):
                        return src.with_prefixlen
        return None

    # --- rollback -------------------------------------------------------------------------------

    def arm_rollback(self, plans, files):
        """Save the way back (rules and persisted files), start the watcher; return what the
        action plugin needs."""
        timeout = self.p["rollback_timeout"]
        base = ROLLBACK_DIR if os.path.isdir("/run") else "/var/tmp/llmfleet-firewall"
        if not os.path.isdir(base):
            os.makedirs(base, 0o700)
        stamp = "%d-%d" % (time.time() * 1000, os.getpid())
        cookie = os.path.join(base, "pending-%s" % stamp)
        marker = os.path.join(base, "rolled-back-%s" % stamp)
        spec = {"restores": [], "files": [], "cleanup": []}
        for family, plan in plans.items():
            path = os.path.join(base, "restore-%s-%s" % (stamp, family))
            self.write_private(path, plan["back"])
            spec["restores"].append([ipt.restore_argv(plan["cmds"]["restore"]), path])
            spec["cleanup"].append(path)
        for index, (dest, (before, _after)) in enumerate(sorted(files.items())):
            backup = None
            if before is not None:
                backup = os.path.join(base, "file-%s-%d" % (stamp, index))
                self.write_private(backup, before)
                spec["cleanup"].append(backup)
            spec["files"].append([dest, backup])
        spec_path = os.path.join(base, "spec-%s.json" % stamp)
        self.write_private(spec_path, json.dumps(spec))
        with open(cookie, "w") as f:
            f.write("confirm by removing this file within %d s\n" % timeout)
        deadline = time.time() + timeout
        argv = iptables_rollback.watcher_argv(sys.executable, cookie, deadline, marker, spec_path)
        unit = "llmfleet-firewall-rollback-%s" % stamp
        systemd_run = self.module.get_bin_path("systemd-run")
        if not os.path.isdir("/run/systemd/system"):
            systemd_run = None
        self._run(iptables_rollback.launch_argv(argv, unit, systemd_run))
        how = "systemd unit %s" % unit if systemd_run else "detached process"
        return {"armed": True, "timeout": timeout, "cookie": cookie, "marker": marker,
                "deadline": deadline, "watcher": how}

    @staticmethod
    def write_private(path, text):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    # --- persisted files ------------------------------------------------------------------------

    def files_plan(self, persist):
        """{path: (content now or None, content wanted or None)} for the files that differ."""
        directory = self.p["persist_dir"]
        if not directory:
            return {}
        plan = {}
        for family in ipt.FAMILIES:
            path = os.path.join(directory, "rules.%s" % family)
            want = persist.get(family) if self.p["state"] == "present" else None
            try:
                with open(path) as f:
                    have = f.read()
            except (IOError, OSError):
                have = None
            if have != want:
                plan[path] = (have, want)
        return plan

    def write_files(self, plan):
        for path, (_before, after) in sorted(plan.items()):
            directory = os.path.dirname(path)
            if after is None:
                if os.path.exists(path):
                    os.remove(path)
                continue
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            tmp = os.path.join(directory, ".%s.tmp" % os.path.basename(path))
            self.write_private(tmp, after)
            self.module.atomic_move(tmp, path)
            os.chmod(path, 0o600)
        if self.p["state"] == "absent" and self.p["persist_dir"] and os.path.isdir(self.p["persist_dir"]) \
                and not os.listdir(self.p["persist_dir"]):
            os.rmdir(self.p["persist_dir"])

    # --- the run --------------------------------------------------------------------------------

    def inputs(self):
        """The rules, checked and normalised (none for state=absent); bad input fails here,
        before any tool is looked up."""
        p = self.p
        try:
            ipt.validate_options(p["chain"], p["ssh_port"], p["rollback_timeout"], p["ssh_connection"])
            return ipt.validate_rules(p["rules"] or [], p["ssh_port"], p["default_deny"]) \
                if p["state"] == "present" else []
        except ipt.AllowlistError as e:
            self.module.fail_json(msg=str(e))

    def plan(self, backend, cmds, rules, guard):
        """Per family: read what we own, render what we want, and the transaction between them
        (and the one back, for the rollback). {families, plans, targets, before, after}."""
        p = self.p
        chain = p["chain"]
        out = {"families": {}, "plans": {}, "targets": {}, "before": [], "after": []}
        for family in ipt.FAMILIES:
            if cmds[family] is None:
                out["families"][family] = {"managed": False, "reason": "ip6tables-%s tools not found" % backend}
                continue
            if family == "ipv6" and not os.path.exists("/proc/net/if_inet6"):
                out["families"][family] = {"managed": False, "reason": "IPv6 is off in the kernel"}
                continue
            table = self.read(cmds[family])
            self.refuse_foreign(family, table)
            current = ipt.owned_state(table, chain)
            if p["state"] == "present":
                target = ipt.desired_state(family, chain, rules, p["policy"], p["default_deny"],
                                           p["docker_user"], guard)
            else:
                target = ipt.absent_state()
            out["targets"][family] = target
            existing = set(table["chains"])
            tx = ipt.transaction(current, target, existing)
            out["families"][family] = {"managed": True, "changed": tx is not None,
                                       "rules": sum(len(v) for v in target["chains"].values())}
            out["before"].append("# %s\n%s" % (family, ipt.state_text(current)))
            out["after"].append("# %s\n%s" % (family, ipt.state_text(target)))
            if tx is not None:
                after_exists = existing | set(target["chains"]) | set(parent for parent, _c in target["jumps"])
                back = ipt.transaction(target, current, after_exists) or ""
                out["plans"][family] = {"tx": tx, "back": back, "cmds": cmds[family], "target": target}
        if p["state"] == "present" and out["families"].get("ipv6", {}).get("managed") is False \
                and any(r["sources"]["ipv6"] for r in rules):
            self.warnings.append("rules list IPv6 sources but IPv6 is not managed here (%s)"
                                 % out["families"]["ipv6"]["reason"])
        return out

    def diff(self, plan, files):
        """The owned chains and jumps of every family before and after, then each persisted file
        that changes."""
        header = "%s (owned chains and jumps)" % self.p["chain"]
        diff = [{"before": "\n".join(plan["before"]), "after": "\n".join(plan["after"]),
                 "before_header": header, "after_header": header}]
        for path, (before, after) in sorted(files.items()):
            diff.append({"before": before or "", "after": after or "",
                         "before_header": path if before is not None else "%s (absent)" % path,
                         "after_header": path if after is not None else "%s (absent)" % path})
        return diff

    def test_transactions(self, plans, result):
        """iptables-restore --test of every transaction before any is applied (in check mode too:
        --test commits nothing)."""
        for family, plan in plans.items():
            rc, out, err = self._run(ipt.restore_argv(plan["cmds"]["restore"], test=True), data=plan["tx"], check=False)
            if rc != 0:
                self.module.fail_json(
                    msg="iptables-restore --test refused the %s transaction, nothing was changed: %s"
                    % (family, (err or out).strip()), transactions=result.get("transactions"))

    def apply(self, plans, files, result):
        """Arm the rollback, apply each family's transaction and read it back (a family that fails
        puts back what was applied), then write the persisted files."""
        if self.p["rollback_timeout"] > 0 and plans:
            result["rollback"] = self.arm_rollback(plans, files)
        applied = []
        for family, plan in plans.items():
            rc, out, err = self._run(ipt.restore_argv(plan["cmds"]["restore"]), data=plan["tx"], check=False)
            if rc == 0:
                applied.append(family)
                now = ipt.owned_state(self.read(plan["cmds"]), self.p["chain"])
                if ipt.same_state(now, plan["target"]):
                    continue
                err = "the rules read back differ from the ones rendered:\n%s" % ipt.state_text(now)
            self.undo(plans, applied, result)
            self.module.fail_json(
                msg="applying the %s allowlist failed; what was applied was put back: %s" % (family, (err or out).strip()),
                **result)
        # Written after the rules took; a rollback puts the previous files back with the rules.
        self.write_files(files)

    def run(self):
        p = self.p
        rules = self.inputs()
        chain = p["chain"]
        if p["validate_only"]:
            return {"changed": False, "rules": self.rules_out(rules), "validated": True}
        backend = self.backend()
        cmds = self.commands(backend)
        self.mixed_backends(backend)
        guard, guard_info = self.guard()
        if guard is not None:
            guard_info["covered_by"] = self.covered(guard, rules)
            if guard_info["covered_by"]:
                guard = None

        plan = self.plan(backend, cmds, rules, guard)
        plans = plan["plans"]
        result = {
            "changed": bool(plans),
            "backend": backend,
            "chain": chain,
            "docker_chain": ipt.docker_chain_name(chain),
            "families": plan["families"],
            "rules": self.rules_out(rules),
            "ssh_guard": guard_info,
            "rollback": {"armed": False, "timeout": p["rollback_timeout"]},
            "persist": {},
            "commands": dict((f, c) for f, c in cmds.items() if c),
        }
        if p["state"] == "present":
            for family, target in plan["targets"].items():
                result["persist"][family] = ipt.persist_text(target)
        files = self.files_plan(result["persist"])
        if files:
            result["changed"] = True
            result["files"] = sorted(files)
        if plans:
            result["transactions"] = dict((f, one["tx"]) for f, one in plans.items())
        if self.module._diff:
            result["diff"] = self.diff(plan, files)

        self.test_transactions(plans, result)
        if result["changed"] and not self.module.check_mode:
            self.apply(plans, files, result)
        return self.finish(result)

    @staticmethod
    def rules_out(rules):
        return [{"port": ipt.port_text(r["port"]), "proto": r["proto"],
                 "sources": dict((f, [n.with_prefixlen for n in r["sources"][f]]) for f in ipt.FAMILIES)}
                for r in rules]

    def undo(self, plans, applied, result):
        for family in applied:
            if plans[family]["back"]:
                self._run(ipt.restore_argv(plans[family]["cmds"]["restore"]), data=plans[family]["back"], check=False)
        cookie = result["rollback"].get("cookie")
        if cookie and os.path.exists(cookie):
            os.remove(cookie)
        result["rollback"]["armed"] = False

    def finish(self, result):
        for w in self.warnings:
            self.module.warn(w)
        return result


def build_module():
    return AnsibleModule(argument_spec=copy.deepcopy(ipt.ARGUMENT_SPEC), supports_check_mode=True)


def main():
    module = build_module()
    module.exit_json(**Allowlist(module).run())


if __name__ == "__main__":
    main()
