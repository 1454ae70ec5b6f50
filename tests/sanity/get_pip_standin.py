"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test downloads get-pip-<version>.py from a host this test bed cannot reach, and runs it
with pip's install arguments plus get-pip's own --no-setuptools/--no-wheel. scripts/sanity.sh
copies this file to ~/.ansible/test/cache/get_pip_<version>.py next to the pip wheel of that
version (downloaded from PyPI); it puts the wheel on sys.path and runs `pip install --upgrade`.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = os.path.splitext(os.path.basename(__file__))[0].replace("get_pip_", "").replace("_", ".")


def main():
    wheels = glob.glob(os.path.join(HERE, "pip-%s-*.whl" % VERSION))
    if not wheels:
        sys.exit("get-pip stand-in: no pip-%s wheel in %s (scripts/sanity.sh downloads it)" % (VERSION, HERE))
    sys.path.insert(0, wheels[0])
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.exit(pip_main(["install", "--upgrade"] + args))


if __name__ == "__main__":
    main()
