"""Test fixtures shared by every tier live in devstack.testing (real servers, started here)."""

pytest_plugins = ["devstack.testing"]
