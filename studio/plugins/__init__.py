"""Discovery of plugin contributions (entry points and the user's plugins folder)."""
