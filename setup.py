"""For ``roomwatch deploy`` and ``scrapyd-deploy``, which build the Scrapyd egg with ``python
setup.py bdist_egg``; the project's metadata, packages and its ``scrapy`` entry point are in
pyproject.toml."""

from setuptools import setup

setup()
