"""The studio's example plugins: a schedule (shifted cosine), the EDM / Karras schedule
and method, a procedural shapes dataset and an SVG exporter, one module each.

Installed with the package as ``studio_plugins`` (setup.py maps the package to this
folder) and registered as its entry points (group ``studio.plugins``, pyproject.toml),
so they are there after ``pip install``; the folder also works as a plugins folder
(``diffusion-studio --plugins plugins ...``), where this file is skipped (a leading
underscore). How to write one: docs/PLUGINS.md.
"""
