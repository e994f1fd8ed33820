"""For ``scrapyd-deploy``, which builds the Scrapyd egg with ``python setup.py bdist_egg``; the
project's metadata, packages and its ``scrapy`` entry point are in pyproject.toml."""

from setuptools import setup

setup()
