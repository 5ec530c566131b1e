"""The AWS fixtures (moto server, local stage) live in tests/conftest.py, shared with e2e."""
