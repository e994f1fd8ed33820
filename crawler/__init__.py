"""The crawls' Scrapy components: settings, items, the storage pipeline, middlewares, extensions,
the pool and the process entry (``python -m crawler.crawl``); the spiders are in ``spiders/``."""
