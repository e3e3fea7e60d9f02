"""The security suite: each test reproduces an attack on a real engine and asserts it is contained."""
