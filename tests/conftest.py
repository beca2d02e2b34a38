"""Session-wide fixtures: the real stack, started once and shared by every e2e test."""

pytest_plugins = ["tests.live"]
