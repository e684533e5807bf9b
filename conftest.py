"""Root conftest: loads the suite's pytest plugin for experiments/ and tests/."""

pytest_plugins = ["chaos.pytest_plugin"]
