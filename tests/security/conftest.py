"""The attack suite: each test reproduces an attack on a real engine and asserts it is contained."""

from tests.security.served_engine import served_api, served_engine  # noqa: F401 - fixtures
