"""deploycheck: verify that what runs on Cloud Run is what the team thinks runs there.

The library has no pytest imports: readers (adapters) talk to the network, rules are pure
functions from observed state to findings, and the pytest layer (the package deploycheck_pytest:
plugin, fixtures, built-in checks) only wires them together.

PYTEST_DONT_REWRITE: the `deploycheck` command imports this package before it runs pytest in
the same process; without the marker pytest warns that it cannot rewrite its asserts (a library
has none to rewrite).
"""

# The one place the version is written: pyproject.toml reads it, `deploycheck --version` prints it.
__version__ = "0.2.0"
