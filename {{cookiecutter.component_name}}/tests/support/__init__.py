"""Test helpers: real servers on loopback (a local Hermes, peers that fail on
purpose, Redis), fixtures and small clients. Never shipped in the wheel or the
image: they live beside the tests, and each module is imported by name.

Run the local Hermes alone with `python -m tests.support.hermes --port 8001`.
"""
