"""The simulated Events API: the owner's room as a long-poll stream (FORMATS.md §6.1).

``routes.py`` serves ``/events/<username>/<token>/``, ``data.py`` holds the streams, tokens and
limits, ``objects.py`` makes event objects (defaults, generated bursts), ``control.py``
``/_sim/events``, ``router.py`` all of it as one router. The site's followers list drives it:
a follower added or removed through ``SiteState`` becomes a follow or unfollow event.
"""
