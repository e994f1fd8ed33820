"""The simulated Chaturbate Affiliate API (FORMATS.md §1).

``routes.py`` serves the online-rooms endpoints, ``feed.py`` holds the rooms and their cached
bytes, ``legacy.py`` the 2017 room shape, ``control.py`` ``/_sim/affiliate``, ``router.py``
all of it as one router.
"""
