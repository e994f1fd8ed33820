"""roomwatch's Scrapy commands (``COMMANDS_MODULE`` of crawler/project.py)."""
