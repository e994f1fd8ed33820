"""The simulated Stats API: the owner's account figures (FORMATS.md §6.2).

``routes.py`` serves ``/statsapi/``, ``data.py`` holds overrides, the figures the Events API
stream drives and the tokens, ``control.py`` ``/_sim/stats``, ``router.py`` all of it as one
router. ``num_followers`` is the site's followers list unless a test overrides it.
"""
