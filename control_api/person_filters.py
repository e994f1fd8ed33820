"""The person list's query parameters, declared once for every route that lists persons.

``GET /persons`` and ``GET /exports/persons`` take the same filters and sort: the filters are a
dependency (:data:`PERSON_FILTER`), so both routes read them, check them and describe them in
the OpenAPI schema from this one declaration.
"""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from storage.person_list import Gender, PersonFilter, PersonSort

Flag = Annotated[
    bool | None, QueryParameter(description="true: only those; false: all others, unknown too")
]
Sort = Annotated[
    PersonSort, QueryParameter(description="ranks ascending, the others descending; nulls last")
]


def person_filter(
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
) -> PersonFilter:
    """The filters of one request (an empty ``q`` or ``tag`` is no filter; tags any case)."""
    return PersonFilter(
        q=q or None,
        tag=tag or None,
        following=following,
        follower=follower,
        online=online,
        gender=gender,
        watch=watch,
    )


PERSON_FILTER = Provide(person_filter, sync_to_thread=False)
"""The dependency, provided by the app under the name ``person_filter``: a route takes
``person_filter: PersonFilters``."""
PersonFilters = NamedDependency[PersonFilter]
