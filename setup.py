"""What pyproject.toml cannot say: a package installed from a folder of another name.

The example plugins live in ``plugins/`` (a plugins folder a user can point the app at)
and install as the package ``studio_plugins``, whose modules pyproject.toml registers
as entry points. pyproject's ``packages.find`` cannot map a package to another folder,
so the package list is made here (``find_namespace_packages``, as pyproject's find
does). The package data, the top-level resources/ folder, installs the same way as the
package studio.resources.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["studio*"]), "studio_plugins", "studio.resources"],
    package_dir={"studio_plugins": "plugins", "studio.resources": "resources"},
)
