"""The orders example: three JVM services (Java) and their adapter (adapter.py)."""
