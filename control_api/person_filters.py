"""The person list's query parameters, declared once for every route that lists persons.

``GET /persons`` and ``GET /exports/persons`` take the same filters and sort: the filters are a
dependency (:data:`PERSON_FILTER`), so both routes read them, check them and describe them in
the OpenAPI schema from this one declaration.
"""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from control_api.params import Db
from storage.accounts import AccountChoice, resolve_account_async
from storage.person_list import Gender, PersonFilter, PersonSort

Flag = Annotated[
    bool | None, QueryParameter(description="true: only those; false: all others, unknown too")
]
Account = Annotated[
    str | None,
    QueryParameter(
        max_length=100,
        description="whose follow state (an account of this install, any case); default: the "
        "only one. With several, required to filter on following or follower",
    ),
]
Sort = Annotated[
    PersonSort, QueryParameter(description="ranks ascending, the others descending; nulls last")
]


async def follow_account(db: Db, account: Account = None) -> AccountChoice:
    """The account whose follow state a route reads (``account=``, else the only one).

    Raises:
        InvalidInput: not an account here, or several and none named (400 naming them).
    """
    return await resolve_account_async(db, account)


async def person_filter(
    db: Db,
    q: Annotated[
        str | None,
        QueryParameter(max_length=100, description="substring of username or display name"),
    ] = None,
    tag: Annotated[
        str | None,
        QueryParameter(max_length=100, description="only persons whose merged tags hold it"),
    ] = None,
    following: Flag = None,
    follower: Flag = None,
    online: Flag = None,
    gender: Annotated[Gender | None, QueryParameter(description="merged gender")] = None,
    watch: Annotated[
        bool | None, QueryParameter(description="true: watched only; false: the others")
    ] = None,
    account: Account = None,
) -> PersonFilter:
    """The filters of one request (an empty ``q`` or ``tag`` is no filter; tags any case).

    Raises:
        InvalidInput: ``account`` is not an account here, or a follow filter is set with
            several accounts and none named (400 naming them).
    """
    follows = following is not None or follower is not None
    choice = await resolve_account_async(db, account, required=follows)
    return PersonFilter(
        q=q or None,
        tag=tag or None,
        following=following,
        follower=follower,
        online=online,
        gender=gender,
        watch=watch,
        account=choice.account,
        per_account=choice.several,
    )


PERSON_FILTER = Provide(person_filter)
"""The dependency, provided by the app under the name ``person_filter``: a route takes
``person_filter: PersonFilters``."""
PersonFilters = NamedDependency[PersonFilter]

FOLLOW_ACCOUNT = Provide(follow_account)
"""Provided under the name ``follow_account``: a route takes ``follow_account: FollowAccount``."""
FollowAccount = NamedDependency[AccountChoice]
