"""Login sessions: capture, encrypted storage, cookie imports and the logged-in probe.

Imports only ``roomwatch`` and ``storage`` (checked by tests/test_architecture.py).
"""
