"""ubuntu_base, seen from outside the role: what apt, dpkg, systemd and the files on the instance say.

The last tests run the role again from the controller with bad input and check that it fails
with a message naming the variable, before anything on the instance changed.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)


def test_apt_sources_point_at_the_mirror(host):
    sources = host.file("/etc/apt/sources.list")
    assert sources.contains("^deb \\[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg\\] "
                            "http://deb.debian.org/debian bookworm main$")
    assert sources.contains("http://deb.debian.org/debian-security bookworm-security main$")
    # apt itself accepts the file and finds packages through it.
    policy = host.check_output("apt-cache policy less")
    assert "deb.debian.org/debian bookworm/main" in policy


def test_no_apt_proxy_file_when_none_is_asked_for(host):
    assert not host.file("/etc/apt/apt.conf.d/95llmfleet-proxy").exists


@pytest.mark.parametrize("name", ["chrony", "jq", "pciutils", "python3-apt", "less"])
def test_base_packages_installed(host, name):
    assert host.package(name).is_installed


def test_chrony_configured_and_enabled(host):
    conf = host.file("/etc/chrony/chrony.conf")
    assert conf.contains("^server ntp1.example.internal iburst$")
    # No default pool when the site names its own servers (air-gapped sites).
    assert not conf.contains("^pool ")
    host.run_expect([0], "chronyd -p -f /etc/chrony/chrony.conf")
    assert host.service("chrony").is_enabled


def test_sysctl_file_has_every_setting(host):
    conf = host.file("/etc/sysctl.d/90-llmfleet.conf")
    assert conf.mode == 0o644
    for line in ("net.core.somaxconn = 65535", "net.ipv4.ip_local_port_range = 1024 65535",
                 "vm.max_map_count = 1048576", "net.ipv4.tcp_keepalive_intvl = 30"):
        assert conf.contains("^%s$" % line), line
    # The file is one sysctl(8) accepts as it is.
    lines = [l for l in conf.content_string.splitlines() if l and not l.startswith("#")]
    assert len(lines) == 12


def test_service_user_and_limits(host):
    user = host.user("llmfleet")
    assert user.exists and user.group == "llmfleet"
    assert user.home == "/var/lib/llmfleet" and host.file("/var/lib/llmfleet").is_directory
    assert user.shell == "/usr/sbin/nologin"
    limits = host.file("/etc/security/limits.d/90-llmfleet.conf").content_string
    assert "llmfleet hard memlock unlimited" in limits
    assert "llmfleet soft nofile 1048576" in limits


def test_matching_packages_are_held(host):
    held = host.check_output("apt-mark showhold").split()
    assert held == ["less"]
    # dpkg refuses to remove a held package without force.
    assert host.run("apt-get -s -qq remove less").rc != 0


def test_unattended_upgrades_blacklist_as_apt_reads_it(host):
    dump = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for pattern in ("^nvidia-", "^libnvidia-", "^cuda-", "^linux-image", "^linux-headers"):
        assert '"%s"' % pattern in dump


def _run_role(*extra_vars):
    return scenario.playbook("converge.yml", *scenario.extra_vars(*extra_vars), timeout=300)


@pytest.mark.parametrize("extra, named", [
    ('{"ubuntu_base_time_sync": "sometimes"}', "ubuntu_base_time_sync"),
    ('{"ubuntu_base_sysctl_extra": {"vm.swappiness": [10]}}', "vm.swappiness"),
    ('{"ubuntu_base_sysctl_extra": {"vm.swappiness": true}}', "vm.swappiness"),
    ('{"ubuntu_base_apt_mirror": "deb.debian.org/debian"}', "ubuntu_base_apt_mirror"),
])
def test_bad_input_fails_before_any_change(host, extra, named):
    before = host.check_output("md5sum /etc/sysctl.d/90-llmfleet.conf /etc/apt/sources.list")
    # A change that would show if the role got as far as writing files.
    run = _run_role(extra, '{"ubuntu_base_limits_nofile": 4096}')
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert named in out, out
    assert "changed=0" in out, out
    assert host.check_output("md5sum /etc/sysctl.d/90-llmfleet.conf /etc/apt/sources.list") == before
    assert "nofile 1048576" in host.file("/etc/security/limits.d/90-llmfleet.conf").content_string
