"""The built-in checks, collected by the plugin in any deploycheck run (see plugin.py)."""
