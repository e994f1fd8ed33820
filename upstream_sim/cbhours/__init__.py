"""The simulated CBHours API (FORMATS.md §2).

``routes.py`` serves ``/api.php``, ``data.py`` holds the trophy set, live rows and activity,
``limit.py`` the one-request-per-second limiter, ``control.py`` ``/_sim/cbhours``,
``router.py`` all of it as one router.
"""
