"""deploycheck: verify that what runs on Cloud Run is what the team thinks runs there.

The library has no pytest imports: readers (adapters) talk to the network, rules are pure
functions from observed state to findings, and the pytest layer (the package deploycheck_pytest:
plugin, fixtures, built-in checks) only wires them together.
"""

__version__ = "0.1.0"
