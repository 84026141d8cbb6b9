"""Discovery of plugin contributions (entry points and the user's plugins folder).

The registries themselves live in :mod:`studio.core.registry`; this layer only finds
and imports the code that adds to them.
"""

from .discovery import GROUP, PluginReport, load_plugins, unload_plugins

__all__ = ["GROUP", "PluginReport", "load_plugins", "unload_plugins"]
