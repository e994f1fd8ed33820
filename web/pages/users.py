"""``/users``: the persons table, and ``/images/{id}``: the stored thumbnails it shows.

The table is one page of the same query as ``GET /api/v1/persons``
(:func:`control_api.persons.person_page`), plus the provenance of the page's rows in one more
read (:func:`storage.person_queries.sources_of`), so every value can be coloured by its source.
"""

from __future__ import annotations

from typing import Any, get_args

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from control_api.images import stored_image
from control_api.params import Db
from control_api.persons import person_page
from roomwatch.config import Config
from roomwatch.errors import NotFound
from storage.person_list import SORT_COLUMNS, Gender, PersonFilter, PersonSort
from storage.person_queries import sources_of
from web.account_choice import page_account
from web.pages import query
from web.person_rows import person_rows
from web.templating import page

PAGE_SIZE = 50
GENDERS: dict[str, str] = {"f": "female", "m": "male", "c": "couple", "t": "trans"}
SORTS: dict[str, str] = {
    "followers": "followers",
    "viewers": "viewers",
    "rank": "rank",
    "grank": "global rank",
    "last_seen": "last seen",
}
assert set(SORTS) == set(SORT_COLUMNS) == set(get_args(PersonSort))


class UsersController(Controller):
    """The persons table: filters and sort in the URL, cursor paging."""

    include_in_schema = False

    @get("/")
    async def root(self) -> Redirect:
        return Redirect("/users", status_code=303)

    @get("/users")
    async def users(self, request: Request[Any, Any, Any], db: Db) -> Template:
        params = request.query_params
        gender: Gender | None = query.optional_choice(params, "gender", get_args(Gender))
        following, follower = query.flag(params, "following"), query.flag(params, "follower")
        # The API's rule (control_api/person_filters.py): with several accounts, a follow
        # filter needs account= (or the account this browser chose last).
        choice = await page_account(
            request,
            db,
            query.text(params, "account"),
            required=following is not None or follower is not None,
        )
        filters = PersonFilter(
            q=query.text(params, "q"),
            tag=query.text(params, "tag"),
            following=following,
            follower=follower,
            online=query.flag(params, "online"),
            watch=query.flag(params, "watch"),
            gender=gender,
            account=choice.account,
            per_account=choice.several,
        )
        sort: PersonSort = query.choice(params, "sort", get_args(PersonSort), "followers")
        cursor = query.text(params, "cursor", max_length=200)
        result = await person_page(db, filters, sort, PAGE_SIZE, cursor)
        provenance = await sources_of(db, [person.person_id for person in result.items])
        kept = {k: v for k, v in params.items() if k != "cursor" and v}
        return page(
            request,
            "users.html",
            accounts=choice.known,
            account=choice.account,
            rows=person_rows(result.items, provenance),
            filters=kept,
            sort=sort,
            sorts=SORTS,
            genders=GENDERS,
            next_cursor=result.next_cursor,
            first_page=cursor is None,
        )

    @get("/images/{image_id:int}")
    async def image(
        self, db: Db, config: NamedDependency[Config], image_id: FromPath[int]
    ) -> Response[Any]:
        """A stored thumbnail (never the upstream URL: pages work offline and leak nothing)."""
        found = await stored_image(db, config, image_id)
        if found is None:
            raise NotFound("image_id", f"no stored image {image_id}")
        return found
