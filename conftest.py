"""The NBA props platform's deployment of deploycheck.

The built-in checks, their fixtures and options come from the installed package (the pytest11
plugin `deploycheck_pytest`); this repository adds only what is the platform's own: its
inventory (services.yaml), its custom checks (checks/) and their fixtures (fixtures/).
"""

pytest_plugins = ["fixtures.nba"]
