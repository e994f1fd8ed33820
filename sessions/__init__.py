"""Login sessions: capture, encrypted storage, cookie imports and the logged-in probe.

Imports only ``roomwatch``, ``formats`` (the site's pages) and ``storage`` (checked by
tests/test_architecture.py).
"""
