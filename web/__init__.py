"""The web UI: server-rendered pages of the same Litestar app as the control API.

Pages read through ``storage`` exactly as the JSON routes do; they sign in with the API token
once (:mod:`web.auth`) and never accept the bearer token, as the API never accepts their cookie.
"""
