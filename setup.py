"""What pyproject.toml cannot say: a package installed from a folder of another name.

The example plugins live in ``plugins/`` (a plugins folder a user can point the app at)
and install as the package ``studio_plugins``, whose modules pyproject.toml registers
as entry points. pyproject's ``packages.find`` cannot map a package to another folder,
so the package list is made here (``find_namespace_packages``, as pyproject's find
does, so data-only folders such as studio/resources stay packages).
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["studio*"]), "studio_plugins"],
    package_dir={"studio_plugins": "plugins"},
)
