"""deploycheck's pytest layer: the plugin (options, markers, rootdir), fixtures and built-in checks.

Kept apart from the `deploycheck` library, which has no pytest imports.
"""
