"""The NBA props platform's deployment of deploycheck.

The built-in checks, their fixtures and options come from the installed package (the pytest11
plugin `deploycheck_pytest`); this repository adds only what is the platform's own: its
inventory (services.yaml), its custom checks (checks/) and their fixtures (fixtures/).
"""

# Imported rather than listed in `pytest_plugins`: with an editable install, a run from another
# directory reaches this file while collecting the built-in checks, and pytest refuses
# `pytest_plugins` in any conftest but the rootdir's.
from fixtures.nba import deploy_script_label  # noqa: F401
