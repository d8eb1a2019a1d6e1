"""Packaging lives in setup.cfg; this adds the twisted plugin, which has no __init__.py on purpose
(``twisted/plugins`` is a namespace Twisted scans on every sys.path entry)."""

from setuptools import find_packages, setup

setup(
    package_dir={"": "."},
    packages=find_packages(include=["jay", "jay.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["jay_plugin.py"], "jay.client": ["py.typed"]},
)
