"""plugins/filter/os_vars.py: the supported releases and the vars files a role tries for a host."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.deepseek.plugins.filter import os_vars as f

FILTERS = f.FilterModule().filters()


def facts(distribution, version, os_family="Debian"):
    return {"distribution": distribution, "distribution_version": version,
            "distribution_major_version": version.split(".")[0], "os_family": os_family}


def test_the_filters_are_registered():
    assert set(FILTERS) == {"os_vars_files", "os_release_problem"}


@pytest.mark.parametrize("host, files", [
    (facts("Ubuntu", "22.04"), ["Ubuntu_22.yml", "Ubuntu.yml", "Debian.yml"]),
    (facts("Ubuntu", "24.04"), ["Ubuntu_24.yml", "Ubuntu.yml", "Debian.yml"]),
    # Debian's distribution is its family: the name is tried once.
    (facts("Debian", "12.8"), ["Debian_12.yml", "Debian.yml"]),
])
def test_the_files_go_from_the_release_to_the_distribution_to_the_family(host, files):
    assert FILTERS["os_vars_files"](host, "ubuntu_base") == files
    assert FILTERS["os_release_problem"](host, "ubuntu_base") == ""


@pytest.mark.parametrize("host, found", [
    (facts("Ubuntu", "26.04"), "Ubuntu 26.04 (Ubuntu_26)"),
    (facts("Ubuntu", "20.04"), "Ubuntu 20.04 (Ubuntu_20)"),
    (facts("Debian", "13.1"), "Debian 13.1 (Debian_13)"),
    (facts("RedHat", "9.4", "RedHat"), "RedHat 9.4 (RedHat_9)"),
])
def test_another_release_is_refused_naming_it_and_the_supported_ones(host, found):
    problem = FILTERS["os_release_problem"](host, "nginx_tls")
    assert problem == ("nginx_tls supports Ubuntu 22.04, Ubuntu 24.04, Debian 12 (the test bed); this host runs "
                       "%s, which is not supported. nginx_tls changed nothing." % found)
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS["os_vars_files"](host, "nginx_tls")
    assert str(err.value) == problem


def test_the_version_found_falls_back_to_the_major_version():
    host = facts("Ubuntu", "26.04")
    del host["distribution_version"]
    assert "this host runs Ubuntu 26 (Ubuntu_26)" in FILTERS["os_release_problem"](host, "x")


@pytest.mark.parametrize("host, missing", [
    ({}, "distribution, distribution_major_version, os_family"),
    (None, "distribution, distribution_major_version, os_family"),
    ({"distribution": "Ubuntu", "distribution_major_version": "24"}, "os_family"),
])
def test_facts_without_a_release_say_what_to_gather(host, missing):
    problem = FILTERS["os_release_problem"](host, "cuda_toolkit")
    assert problem == ("cuda_toolkit: this host's facts do not name its release (no %s): gather them first "
                       "(ansible.builtin.setup with gather_subset min). cuda_toolkit changed nothing." % missing)
    with pytest.raises(AnsibleFilterError, match="gather them first"):
        FILTERS["os_vars_files"](host, "cuda_toolkit")


def test_facts_are_read_as_strings():
    class Tagged(str):  # ansible-core 2.19 hands templated values over as str subclasses
        pass
    host = {"distribution": Tagged("Ubuntu"), "distribution_major_version": Tagged("24"),
            "distribution_version": Tagged("24.04"), "os_family": Tagged("Debian")}
    assert FILTERS["os_vars_files"](host) == ["Ubuntu_24.yml", "Ubuntu.yml", "Debian.yml"]


def test_the_supported_list_has_one_line_per_release():
    keys = [(d, m) for d, m, _name, _codename, _note in f.SUPPORTED]
    assert len(keys) == len(set(keys))
    assert all(name.startswith(d + " " + m) for d, m, name, _codename, _note in f.SUPPORTED)
