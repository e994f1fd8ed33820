"""The spiders: one module per spider (its ``name`` is the module's), and the bases they share
(``base.py``, ``cbhours_api.py``, ``logged_in.py``)."""
