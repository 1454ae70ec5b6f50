# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The allowlist as data: validation, rendering in iptables-save's own form, parsing of
iptables-save output, and the one restore transaction that moves what we own from one state to
another. Pure functions (no commands run here), shared by the iptables_allowlist module and its
unit tests.

What we own, per address family: the chain (default LLMFLEET-INPUT), its jump from INPUT, and
with docker_user the chain <chain>-DOCKER and its jump from DOCKER-USER. Nothing else is ever
written: every other chain and table (Docker's, the user's) stays as it is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

FAMILIES = ("ipv4", "ipv6")
PROTOS = ("tcp", "udp")
INPUT = "INPUT"
DOCKER_USER = "DOCKER-USER"
# iptables chain names are at most 28 characters; ours gets "-DOCKER" appended.
CHAIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$")
RESERVED_CHAINS = ("INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING", "DOCKER", DOCKER_USER)
# iptables refuses a chain named like a target ("chain name may not clash with target name"):
# the verdicts and every target extension of iptables 1.8 (libxt_/libipt_/libip6t_ upper-case).
TARGET_NAMES = frozenset((
    "ACCEPT", "DROP", "QUEUE", "RETURN", "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK",
    "CONNSECMARK", "CT", "DNAT", "DNPT", "DSCP", "ECN", "HL", "HMARK", "IDLETIMER", "LED", "LOG",
    "MARK", "MASQUERADE", "NAT", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST", "REDIRECT",
    "REJECT", "SECMARK", "SET", "SNAT", "SNPT", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS",
    "TPROXY", "TRACE", "TTL", "ULOG", "JOOL", "ERROR"))
# Chains other tools make and own (compared case-insensitively as prefixes): never ours to flush.
FOREIGN_PREFIXES = (
    ("f2b-", "fail2ban"), ("fail2ban", "fail2ban"), ("ufw-", "ufw"), ("ufw6-", "ufw"),
    ("docker", "Docker"), ("kube-", "Kubernetes"), ("cali-", "Calico"), ("cilium", "Cilium"),
    ("flannel", "flannel"), ("weave", "Weave Net"), ("libvirt", "libvirt"), ("crowdsec", "CrowdSec"),
    ("sshguard", "sshguard"), ("in_", "firewalld"), ("fwd_", "firewalld"), ("out_", "firewalld"),
    ("input_direct", "firewalld"), ("forward_direct", "firewalld"), ("output_direct", "firewalld"),
    ("lxd-", "LXD"), ("incus-", "Incus"), ("podman", "Podman"), ("cni-", "CNI"), ("netavark", "Podman"),
    ("nova-", "OpenStack"), ("neutron-", "OpenStack"), ("ts-", "Tailscale"), ("wg-", "WireGuard"))
# The first rule of every chain this module creates: a comment match without a target (it only
# counts packets). A chain without it (anywhere) was made by someone else, and is never flushed or
# deleted.
MARKER_COMMENT = "llmfleet-deepseek-iptables_allowlist"
# Under default_deny, IPv6 needs neighbour discovery and the ICMPv6 errors (RFC 4890) or it
# stops working altogether; IPv4's errors arrive as RELATED.
ICMPV6_TYPES = (1, 2, 3, 4, 133, 134, 135, 136)
# Seconds every iptables-restore (the module's --test, apply and undo, the rollback watcher's)
# waits for the xtables lock that another iptables command (Docker's, a boot-time loader's) holds,
# before it gives up (its -w).
XTABLES_LOCK_WAIT = 10

# The module's options with their types and defaults: the module's argument spec, and the
# defaults the action plugin's controller-side check (validate_args) applies. The order is the
# one error messages list them in.
ARGUMENT_SPEC = dict(
    rules=dict(type="list", elements="dict", default=[]),
    chain=dict(type="str", default="LLMFLEET-INPUT"),
    policy=dict(type="str", default="drop", choices=["drop", "reject"]),
    ssh_guard=dict(type="bool", default=True),
    ssh_port=dict(type="int", default=22),
    docker_user=dict(type="bool", default=False),
    # Seconds the controller has to confirm a change over a new connection (0: no rollback).
    rollback_timeout=dict(type="int", default=30),
    default_deny=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    persist_dir=dict(type="path"),
    ssh_connection=dict(type="str", default=""),
    validate_only=dict(type="bool", default=False),
)


class AllowlistError(ValueError):
    """Bad input; the message names the rule and the value, and what would be accepted."""


def _rule_name(index, rule):
    if not isinstance(rule, dict):
        return "rules[%d]" % index
    if rule.get("name"):
        return "rules[%d] %s (port %s)" % (index, rule["name"], rule.get("port"))
    return "rules[%d] (port %s)" % (index, rule.get("port"))


def parse_port(value, where):
    """'443', 443 or '8000:8010' -> (low, high); anything else raises AllowlistError."""
    if isinstance(value, bool):
        value = None
    text = str(value).strip() if value is not None else ""
    parts = text.split(":")
    if not text or len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise AllowlistError(
            "%s: port %r is not a port number or a 'from:to' range (1-65535)" % (where, value))
    low, high = int(parts[0]), int(parts[-1])
    for p in (low, high):
        if not 1 <= p <= 65535:
            raise AllowlistError("%s: port %s is out of range (1-65535)" % (where, p))
    if low > high:
        raise AllowlistError("%s: port range %r runs backwards (from must be <= to)" % (where, text))
    return low, high


def port_text(port):
    low, high = port
    return str(low) if low == high else "%d:%d" % (low, high)


def parse_source(value, where):
    """A CIDR or address -> ipaddress network. Host bits set is an error (a typo there widens
    access), and so are names: iptables would resolve them once, at load time."""
    text = str(value).strip() if value is not None else ""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise AllowlistError(
                "%s: source %r is not an IPv4/IPv6 address or CIDR (for example 10.0.0.0/8, "
                "192.0.2.7, 2001:db8::/32); host names are not accepted" % (where, value))
        raise AllowlistError(
            "%s: source %r has host bits set; did you mean %s?" % (where, value, loose))
    return net


def family_of(net):
    return "ipv4" if net.version == 4 else "ipv6"


def validate_rules(rules, ssh_port, default_deny):
    """The user's rules -> a list of {port: (low, high), proto, sources: {ipv4: [...], ipv6: [...]}}
    merged by (port, proto) and in input order. Raises AllowlistError on the first bad value."""
    if not isinstance(rules, list):
        raise AllowlistError("rules must be a list of {port, proto, sources}")
    merged = []
    by_key = {}
    for index, rule in enumerate(rules):
        where = _rule_name(index, rule)
        if not isinstance(rule, dict):
            raise AllowlistError("%s: each rule is a dict with port, proto and sources" % where)
        unknown = sorted(set(rule) - set(("port", "proto", "sources", "name")))
        if unknown:
            raise AllowlistError(
                "%s: unknown key(s) %s; a rule has port, proto, sources (and an optional name)"
                % (where, ", ".join(unknown)))
        port = parse_port(rule.get("port"), where)
        proto = rule.get("proto", "tcp")
        if proto not in PROTOS:
            raise AllowlistError(
                "%s: proto %r is not one of %s" % (where, proto, ", ".join(PROTOS)))
        sources = rule.get("sources")
        if sources is None or isinstance(sources, (str, bytes)) or not isinstance(sources, (list, tuple)):
            raise AllowlistError(
                "%s: sources must be a list of addresses or CIDRs (an empty list closes the port "
                "to every source), got %r" % (where, sources))
        nets = [parse_source(s, where) for s in sources]
        key = (port, proto)
        if key not in by_key:
            by_key[key] = {"port": port, "proto": proto, "sources": {"ipv4": [], "ipv6": []}}
            merged.append(by_key[key])
        for net in nets:
            bucket = by_key[key]["sources"][family_of(net)]
            if net not in bucket:
                bucket.append(net)
    for rule in merged:
        low, high = rule["port"]
        if rule["proto"] == "tcp" and low <= ssh_port <= high and not any(rule["sources"].values()):
            raise AllowlistError(
                "rule for port %s/tcp: an empty source list drops SSH (port %d) from everywhere; "
                "list the bastion or controller addresses that may connect"
                % (port_text(rule["port"]), ssh_port))
    if default_deny and not ssh_covered(merged, ssh_port):
        raise AllowlistError(
            "default_deny: true drops SSH (port %d) from every address but this run's controller; "
            "add a rule for port %d/tcp with the bastion or controller addresses that may connect "
            "(the next run may come from another address)" % (ssh_port, ssh_port))
    return merged


def validate_options(chain, ssh_port, rollback_timeout, ssh_connection=""):
    validate_chain(chain)
    if not isinstance(ssh_port, int) or isinstance(ssh_port, bool) or not 1 <= ssh_port <= 65535:
        raise AllowlistError("ssh_port %r is out of range (1-65535)" % (ssh_port,))
    if not isinstance(rollback_timeout, int) or isinstance(rollback_timeout, bool) or rollback_timeout < 0:
        raise AllowlistError("rollback_timeout %r must be 0 (off) or a whole number of seconds" % (rollback_timeout,))
    if ssh_connection and parse_ssh_connection(ssh_connection) is None:
        raise AllowlistError(
            "ssh_connection %r is not an SSH_CONNECTION value ('client_ip client_port server_ip "
            "server_port', for example '10.0.0.5 51000 10.0.0.9 22'); the SSH guard cannot work with "
            "it. Leave it empty to let the module find the connection" % (ssh_connection,))


# The module's options as the action plugin receives them (templated, not yet typed).
OPTIONS = tuple(ARGUMENT_SPEC)
_TRUE = ("yes", "on", "1", "true", "y", "t")
_FALSE = ("no", "off", "0", "false", "n", "f", "")


def _bool_arg(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AllowlistError("%s %r is not a boolean (true or false)" % (name, value))


def _int_arg(name, value, accepted):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.match(r"^\s*-?[0-9]+\s*$", value):
        return int(value)
    raise AllowlistError("%s %r is not a whole number: %s" % (name, value, accepted))


def validate_args(args):
    """Every option of the module, as the action plugin gets them (before the module's own type
    conversion): typed, checked and normalised, or AllowlistError naming the option, the value and
    what is accepted. The controller-side check: nothing is decided on a value not checked here."""
    unknown = sorted(set(args) - set(OPTIONS))
    if unknown:
        raise AllowlistError("unknown option(s) %s; the options are %s" % (", ".join(unknown), ", ".join(OPTIONS)))

    def given(name):
        return args.get(name, ARGUMENT_SPEC[name].get("default"))

    out = {
        "rules": args.get("rules") if args.get("rules") is not None else [],
        "chain": given("chain"),
        "policy": given("policy"),
        "state": given("state"),
        "ssh_connection": args.get("ssh_connection") or "",
        "persist_dir": args.get("persist_dir"),
    }
    for name in ("ssh_guard", "docker_user", "default_deny", "validate_only"):
        out[name] = _bool_arg(name, given(name))
    out["ssh_port"] = _int_arg("ssh_port", given("ssh_port"), "a port, 1-65535")
    out["rollback_timeout"] = _int_arg("rollback_timeout", given("rollback_timeout"), "0 (off) or a number of seconds")
    for name in ("policy", "state"):
        choices = ARGUMENT_SPEC[name]["choices"]
        if out[name] not in choices:
            raise AllowlistError("%s %r is not one of %s" % (name, out[name], ", ".join(choices)))
    if not isinstance(out["ssh_connection"], str):
        raise AllowlistError("ssh_connection %r must be a string" % (out["ssh_connection"],))
    if out["persist_dir"] is not None and (not isinstance(out["persist_dir"], str) or not out["persist_dir"].startswith("/")):
        raise AllowlistError("persist_dir %r must be an absolute path (for example /etc/llmfleet/firewall)"
                             % (out["persist_dir"],))
    validate_options(out["chain"], out["ssh_port"], out["rollback_timeout"], out["ssh_connection"])
    if out["state"] == "present":
        validate_rules(out["rules"], out["ssh_port"], out["default_deny"])
    elif not isinstance(out["rules"], list):
        raise AllowlistError("rules must be a list of {port, proto, sources}")
    return out


def ssh_covered(rules, ssh_port):
    return any(r["proto"] == "tcp" and r["port"][0] <= ssh_port <= r["port"][1]
               and any(r["sources"].values()) for r in rules)


def validate_chain(chain):
    """The name of the chain this module will own; refused (naming `chain` and why) when it cannot
    be a chain, is a built-in, a target, a Docker chain, this module's own Docker chain, or the
    chain of another tool. Whether a chain of that name on a host is ours is judged there
    (foreign_chains)."""
    why = None
    if not isinstance(chain, str) or not CHAIN_RE.match(chain):
        why = "it is not 1-21 letters, digits, '_', '.', '-' starting with a letter or digit"
    elif chain.upper() in RESERVED_CHAINS:
        why = "it is a built-in or Docker chain"
    elif chain in TARGET_NAMES or chain.upper() in ("ACCEPT", "DROP", "QUEUE", "RETURN"):
        why = "it is an iptables target name, which iptables refuses as a chain name"
    elif chain.upper().endswith("-DOCKER"):
        why = ("it ends in -DOCKER, the form of the chain this module makes for DOCKER-USER "
               "(LLMFLEET-INPUT's is LLMFLEET-DOCKER); name the INPUT chain")
    else:
        for prefix, tool in FOREIGN_PREFIXES:
            if chain.lower().startswith(prefix):
                why = "it is named like a chain of %s (%s...), which this module would flush" % (tool, prefix)
                break
    if why:
        raise AllowlistError(
            "chain %r is not a name this module can own: %s. Accepted: 1-21 letters, digits, '_', "
            "'.', '-', not a built-in, target, Docker or other tool's chain, not ending in -DOCKER "
            "(for example LLMFLEET-INPUT)" % (chain, why))
    return chain


def marker_line(name):
    return "-A %s -m comment --comment %s" % (name, MARKER_COMMENT)


# Rule shapes earlier versions (without the marker) rendered, after normalize(): a chain made
# only of these, starting the way render_input/render_docker start, was made by this module and
# is adopted (the next change adds the marker).
_SRC = r"(-s [0-9A-Fa-f.:/]+ )?"
_PORT = r"[0-9]+(:[0-9]+)?"
_VERDICT = r"-j (DROP|REJECT --reject-with [a-z0-9-]+)"
_LEGACY_INPUT = (
    r"-p ipv6-icmp --icmpv6-type [0-9]+ -j ACCEPT",
    _SRC + r"-p (tcp|udp) --dport " + _PORT + " -j ACCEPT",
    r"-p (tcp|udp) --dport " + _PORT + " " + _VERDICT,
    _VERDICT)
_LEGACY_DOCKER = (
    _SRC + r"-p (tcp|udp) -m conntrack --ctstate DNAT --ctorigdstport " + _PORT + " -j RETURN",
    r"-p (tcp|udp) -m conntrack --ctstate DNAT --ctorigdstport " + _PORT + " " + _VERDICT,
    r"-m conntrack --ctstate DNAT " + _VERDICT)


def _legacy_owned(name, rules, docker):
    """True when `rules` (of chain `name`) are exactly what an earlier version of this module
    rendered: its fixed first lines, then only its rule shapes."""
    lines = [normalize(r) for r in rules]
    if docker:
        head = ["-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN" % name]
        shapes = _LEGACY_DOCKER
    else:
        head = ["-A %s -i lo -j ACCEPT" % name,
                "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" % name]
        shapes = _LEGACY_INPUT
    if lines[:len(head)] != head:
        return False
    escaped = re.escape(name)
    compiled = [re.compile("^-A %s %s$" % (escaped, shape)) for shape in shapes]
    return all(any(p.match(line) for p in compiled) for line in lines[len(head):])


def foreign_chains(filter_table, chain):
    """The chains named `chain` and its Docker chain that exist in the parsed filter table but were
    not made by this module: [(name, why)]. Such a chain is never flushed, filled or deleted."""
    chains = filter_table.get("chains", {})
    rules = filter_table.get("rules", [])
    found = []
    for name, docker in ((chain, False), (docker_chain_name(chain), True)):
        if name not in chains:
            continue
        mine = [r for r in rules if r.startswith("-A %s " % name)]
        # Anywhere in the chain: a rule someone inserted first by hand is drift this module puts
        # right, not a reason to disown the chain.
        if normalize(marker_line(name)) in [normalize(r) for r in mine]:
            continue
        if mine and _legacy_owned(name, mine, docker):
            continue
        if not mine:
            why = "it exists and is empty, without this module's marker rule"
        else:
            why = "none of its %d rule(s) is this module's marker rule (first: %s)" % (len(mine), mine[0])
        found.append((name, why))
    return found


def docker_chain_name(chain):
    base = chain[:-len("-INPUT")] if chain.endswith("-INPUT") else chain
    return base + "-DOCKER"


def _src(net):
    # iptables-save leaves out a source that matches everything.
    return "" if net.prefixlen == 0 else " -s %s" % net.with_prefixlen


def _verdict(policy, family, proto=None):
    if policy == "drop":
        return "-j DROP"
    if proto == "tcp":
        return "-j REJECT --reject-with tcp-reset"
    return "-j REJECT --reject-with %s" % (
        "icmp-port-unreachable" if family == "ipv4" else "icmp6-port-unreachable")


def render_input(family, chain, rules, policy, default_deny, guard=None):
    """The chain's rules, in the exact form iptables-save prints them.

    guard: (network, port) of the controller's connection, or None."""
    a = "-A %s " % chain
    lines = [marker_line(chain), a + "-i lo -j ACCEPT", a + "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    if default_deny and family == "ipv6":
        lines += [a + "-p ipv6-icmp -m icmp6 --icmpv6-type %d -j ACCEPT" % t for t in ICMPV6_TYPES]
    if guard is not None and family_of(guard[0]) == family:
        lines.append(a.rstrip() + "%s -p tcp -m tcp --dport %d -j ACCEPT" % (_src(guard[0]), guard[1]))
    for rule in rules:
        match = "-p {p} -m {p} --dport {d}".format(p=rule["proto"], d=port_text(rule["port"]))
        for net in rule["sources"][family]:
            lines.append(a.rstrip() + "%s %s -j ACCEPT" % (_src(net), match))
    for rule in rules:
        match = "-p {p} -m {p} --dport {d}".format(p=rule["proto"], d=port_text(rule["port"]))
        lines.append(a + "%s %s" % (match, _verdict(policy, family, rule["proto"])))
    if default_deny:
        lines.append(a + _verdict(policy, family))
    return lines


def render_docker(family, chain, rules, policy, default_deny):
    """Rules for published container ports (DNAT, then FORWARD through DOCKER-USER): matched on the
    original destination port with conntrack; allowed traffic RETURNs to Docker's chains."""
    a = "-A %s " % chain
    lines = [marker_line(chain), a + "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
    for rule in rules:
        match = "-p %s -m conntrack --ctstate DNAT --ctorigdstport %s" % (rule["proto"], port_text(rule["port"]))
        for net in rule["sources"][family]:
            lines.append(a.rstrip() + "%s %s -j RETURN" % (_src(net), match))
    for rule in rules:
        match = "-p %s -m conntrack --ctstate DNAT --ctorigdstport %s" % (rule["proto"], port_text(rule["port"]))
        lines.append(a + "%s %s" % (match, _verdict(policy, family, rule["proto"])))
    if default_deny:
        lines.append(a + "-m conntrack --ctstate DNAT " + _verdict(policy, family))
    return lines


def desired_state(family, chain, rules, policy, default_deny, docker_user, guard=None):
    """What we own should look like: {chains: {name: [lines]}, jumps: {(parent, child): 1}}."""
    state = {"chains": {chain: render_input(family, chain, rules, policy, default_deny, guard)},
             "jumps": {(INPUT, chain): 1}}
    if docker_user:
        dchain = docker_chain_name(chain)
        state["chains"][dchain] = render_docker(family, dchain, rules, policy, default_deny)
        state["jumps"][(DOCKER_USER, dchain)] = 1
    return state


def absent_state():
    return {"chains": {}, "jumps": {}}


_IMPLICIT_MATCH = re.compile(r" -m (tcp|udp|icmp|icmp6)(?= )")


def normalize(line):
    """One rule line in a form that does not depend on the iptables version's printing details:
    implicit protocol matches dropped, protocol aliases unified, whitespace collapsed."""
    line = " ".join(line.split())
    line = line.replace("-p icmpv6 ", "-p ipv6-icmp ").replace("-p 58 ", "-p ipv6-icmp ")
    line = _IMPLICIT_MATCH.sub("", line)
    line = line.replace("--ctstate ESTABLISHED,RELATED", "--ctstate RELATED,ESTABLISHED")
    return line


def parse_save(text):
    """iptables-save output -> {table: {"chains": {name: policy or '-'}, "rules": [lines]}}."""
    tables = {}
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {"chains": {}, "rules": []})
        elif line == "COMMIT":
            table = None
        elif table is None:
            continue
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            table["chains"][name] = policy
        elif line.startswith("-A "):
            table["rules"].append(line)
    return tables


def owned_state(filter_table, chain):
    """What we own as it is now, read from the parsed filter table."""
    chains = filter_table.get("chains", {})
    rules = filter_table.get("rules", [])
    dchain = docker_chain_name(chain)
    state = {"chains": {}, "jumps": {}}
    for name in (chain, dchain):
        if name in chains:
            prefix = "-A %s " % name
            state["chains"][name] = [r for r in rules if r.startswith(prefix)]
    for parent, child in ((INPUT, chain), (DOCKER_USER, dchain)):
        jump = "-A %s -j %s" % (parent, child)
        count = sum(1 for r in rules if normalize(r) == jump)
        if count:
            state["jumps"][(parent, child)] = count
    return state


def same_state(a, b):
    if set(a["chains"]) != set(b["chains"]) or a["jumps"] != b["jumps"]:
        return False
    return all([normalize(x) for x in a["chains"][n]] == [normalize(x) for x in b["chains"][n]]
               for n in a["chains"])


def transaction(current, target, existing_chains):
    """The iptables-restore --noflush input that turns `current` into `target` in one commit,
    or None when nothing differs. existing_chains: every chain name the filter table has now
    (a declaration ':NAME - [0:0]' creates a chain or flushes it, so Docker's DOCKER-USER is
    declared only when it does not exist yet)."""
    if same_state(current, target):
        return None
    out = ["*filter"]
    # Parents we jump from that do not exist yet (DOCKER-USER before Docker first starts; Docker
    # keeps a DOCKER-USER it finds).
    for parent in sorted(set(p for (p, _c), n in target["jumps"].items() if n)):
        if parent not in existing_chains:
            out.append(":%s - [0:0]" % parent)
    # Surplus jumps first (duplicates, or jumps to a chain that goes away).
    for (parent, child), count in sorted(current["jumps"].items()):
        want = target["jumps"].get((parent, child), 0)
        out += ["-D %s -j %s" % (parent, child)] * max(count - want, 0)
    # Chains that should exist with other content: declared (created or flushed) and filled.
    for name in sorted(target["chains"]):
        lines = target["chains"][name]
        have = current["chains"].get(name)
        if have is None or [normalize(x) for x in have] != [normalize(x) for x in lines]:
            out.append(":%s - [0:0]" % name)
            out += lines
    # Missing jumps, first in their parent chain.
    for (parent, child), want in sorted(target["jumps"].items()):
        if want and not current["jumps"].get((parent, child)):
            out.append("-I %s 1 -j %s" % (parent, child))
    # Chains that go away: flushed, then deleted.
    for name in sorted(set(current["chains"]) - set(target["chains"])):
        out += [":%s - [0:0]" % name, "-X %s" % name]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def state_text(state):
    """What we own, as iptables-save would print it: for --diff and the boot-time restore file."""
    lines = []
    for name in sorted(state["chains"]):
        lines.append(":%s - [0:0]" % name)
    for (parent, child), count in sorted(state["jumps"].items()):
        lines += ["-A %s -j %s" % (parent, child)] * count
    for name in sorted(state["chains"]):
        lines += state["chains"][name]
    return "\n".join(lines) + ("\n" if lines else "")


def persist_text(state):
    """The chains we own as an iptables-restore --noflush file (no jumps: the boot unit adds them
    only when missing, so a restart of the unit never duplicates one)."""
    if not state["chains"]:
        return ""
    out = ["*filter"]
    for name in sorted(state["chains"]):
        out.append(":%s - [0:0]" % name)
    for name in sorted(state["chains"]):
        out += state["chains"][name]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def restore_argv(restore, test=False):
    """The iptables-restore command line for one transaction on stdin: it changes only the chains
    the transaction names (--noflush), and with test only checks it (--test) and commits nothing."""
    return [restore, "-w", str(XTABLES_LOCK_WAIT)] + (["--test"] if test else []) + ["--noflush"]


def parse_ssh_connection(value):
    """SSH_CONNECTION ('client_ip client_port server_ip server_port') -> (network, server_port)."""
    parts = (value or "").split()
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    addr = parts[0].split("%")[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ipaddress.ip_network(ip), int(parts[3])
