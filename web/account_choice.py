"""Which account a page shows, remembered per signed-in browser.

A page that reads one account's follow state takes ``account=`` (the API's rule,
:func:`storage.accounts.choose_account`). The pages also remember it: a page visited with a
valid ``account=`` (the header's switcher submits one) keeps it in the browser's web session
(:class:`web.auth.WebSession`, in the API process's memory like the session itself), and a page
that needs an account while its query names none uses the remembered one instead of answering
the 400 that offers the switcher. A remembered account the install no longer has is forgotten
(the 400 again, with several accounts). Pages that need no account (the Users page without a
follow filter, a profile) keep showing what any account knows unless their query names one.
The JSON API remembers nothing: ``account=`` or its 400.
"""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import Request

from storage.accounts import AccountChoice, account_choice, list_accounts_async
from web.auth import WebSession


async def page_account(
    request: Request[Any, Any, Any],
    db: psycopg.AsyncConnection[Any],
    given: str | None,
    *,
    required: bool = True,
) -> AccountChoice:
    """The account a page means: ``given`` (its ``account=``, remembered when valid), else
    (``required``) the one this browser chose last, else the install's rule.

    Raises:
        InvalidInput: ``given`` is not an account of this install; or ``required``, none
            given or remembered, and several (``AccountNotChosen``, naming them).
    """
    known = await list_accounts_async(db)
    session: WebSession | None = getattr(request.state, "web_session", None)
    if given and given.strip():
        choice = account_choice(known, given, required=required)
        if session is not None:
            session.account = choice.account
        return choice
    remembered = session.account if session is not None else None
    if remembered is not None and remembered not in known:
        assert session is not None
        session.account = remembered = None
    if required and remembered is not None:
        return account_choice(known, remembered)
    return account_choice(known, None, required=required)
