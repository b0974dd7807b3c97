"""deploycheck's pytest layer: the plugin (options, markers, rootdir), fixtures and built-in checks.

Kept apart from the `deploycheck` library, which has no pytest imports.

PYTEST_DONT_REWRITE (this package module only; the checks' asserts are still rewritten): the
`deploycheck` command imports it before it runs pytest in the same process.
"""
