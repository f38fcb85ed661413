"""Helpers for the tests: waiting, the test Settings as environment variables, a real
Celery worker process, and test data created through the domain."""
