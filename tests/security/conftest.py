"""The security tests' fixtures: those of tests/conftest.py (a real engine on a temporary state dir)."""
