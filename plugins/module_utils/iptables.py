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
# Under default_deny, IPv6 needs neighbour discovery and the ICMPv6 errors (RFC 4890) or it
# stops working altogether; IPv4's errors arrive as RELATED.
ICMPV6_TYPES = (1, 2, 3, 4, 133, 134, 135, 136)


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


def validate_options(chain, ssh_port, rollback_timeout):
    validate_chain(chain)
    if not isinstance(ssh_port, int) or isinstance(ssh_port, bool) or not 1 <= ssh_port <= 65535:
        raise AllowlistError("ssh_port %r is out of range (1-65535)" % (ssh_port,))
    if not isinstance(rollback_timeout, int) or isinstance(rollback_timeout, bool) or rollback_timeout < 0:
        raise AllowlistError("rollback_timeout %r must be 0 (off) or a number of seconds" % (rollback_timeout,))


def ssh_covered(rules, ssh_port):
    return any(r["proto"] == "tcp" and r["port"][0] <= ssh_port <= r["port"][1]
               and any(r["sources"].values()) for r in rules)


def validate_chain(chain):
    if not CHAIN_RE.match(chain or "") or chain.upper() in RESERVED_CHAINS or chain.upper().startswith("DOCKER"):
        raise AllowlistError(
            "chain %r is not a name this module can own: 1-21 letters, digits, '_', '.', '-', not "
            "a built-in or Docker chain (for example LLMFLEET-INPUT)" % (chain,))
    return chain


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
    lines = [a + "-i lo -j ACCEPT", a + "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
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
    lines = [a + "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
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
