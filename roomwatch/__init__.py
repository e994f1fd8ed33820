"""roomwatch core: configuration, errors and logging shared by every package."""

__version__ = "0.1.0"
