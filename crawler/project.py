"""The Scrapy project's settings module (``scrapy.cfg``, and the egg's ``scrapy`` entry point).

What ``scrapy list``, ``scrapy crawl`` and Scrapyd need to find the spiders and roomwatch's own
``crawl`` command. A crawl's settings are not here: ``crawler.commands.crawl`` runs the job as
``python -m crawler.crawl`` does, with :func:`crawler.settings.crawl_settings` built from the
config (``ROOMWATCH_*`` variables and ``ROOMWATCH_CONFIG``), so both doors crawl alike.
"""

BOT_NAME = "roomwatch"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
# Replaces Scrapy's own ``crawl``: every crawl is a recorded job (crawler/commands/crawl.py).
COMMANDS_MODULE = "crawler.commands"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
TELNETCONSOLE_ENABLED = False
ROBOTSTXT_OBEY = False
