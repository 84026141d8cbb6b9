"""The studio's package data: shipped configs (``configs/*.toml``), the app icon
(``icons/``) and small weights (the digits classifier). This folder is the top-level
``resources/`` of the repository, installed inside the wheel as ``studio.resources``
(setup.py's package_dir); code finds it with ``importlib.resources.files("studio.resources")``."""
