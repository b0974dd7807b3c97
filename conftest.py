"""deploycheck's pytest wiring. The logic lives in fixtures/ (pytest) and deploycheck/ (library)."""

pytest_plugins = ["fixtures.plugin", "fixtures.observe", "fixtures.images", "fixtures.reporting"]
