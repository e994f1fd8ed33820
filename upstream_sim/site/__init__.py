"""The simulated site's logged-in side (FORMATS.md §3) and its thumbnail host.

``routes.py`` serves the login side and ``pages.py`` its HTML; ``list_routes.py`` serves the
follow lists, ``list_pages.py`` their HTML and ``follow_lists.py`` their rooms; ``state.py``
holds accounts, sessions and switches; ``thumbnails.py`` is the image host; ``control.py``
serves ``/_sim/site``, ``router.py`` all of it as one router.
"""
