"""Numbered SQL migrations (package data read by storage.migrator)."""
