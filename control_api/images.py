"""``GET /images/{id}``: a stored thumbnail, and the link a person's detail gives to it.

Upstream image URLs expire, so a person's detail carries ``image``: the local copy's URL when
one was downloaded, else the upstream ``image_url``. What to serve is found only through the
``images`` row (never a path from the request): its bytes in ``image_contents`` when the
database holds them (``images.store = "database"``), else its file, only inside
``data_dir/images``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import File, Response
from psycopg import AsyncConnection

from control_api.params import Db
from control_api.problems import problem_spec
from roomwatch.config import Config
from roomwatch.errors import NotFound
from storage.images import get_image, image_file, images_dir
from storage.person_queries import PersonDetail

IMAGE_LINK = "/api/v1/images/{}"
"""The route below under the API's ``/api/v1`` router, as clients request it."""

_NOT_FOUND = {
    404: problem_spec("No stored image with that id (or its file is gone); `field` names it")
}


class PersonDetailWithImage(PersonDetail, frozen=True, kw_only=True):
    """A person's merged state plus where to load their picture.

    Attributes:
        image: the local copy (``/api/v1/images/{image_id}``) when one was downloaded, else
            the upstream ``image_url`` (which expires), else null.
    """

    image: str | None = None


def with_image(person: PersonDetail) -> PersonDetailWithImage:
    """``person`` with ``image`` set, preferring the local copy."""
    link = IMAGE_LINK.format(person.image_id) if person.image_id is not None else person.image_url
    return PersonDetailWithImage(**msgspec.structs.asdict(person), image=link)


class ImageController(Controller):
    """Stored thumbnails, by the id that persons' ``image_id`` names."""

    path = "/images"
    tags = ("images",)

    @get(
        "/{image_id:int}",
        summary="A stored image (the local copy of a person's thumbnail)",
        responses=_NOT_FOUND,
        media_type="image/jpeg",
    )
    async def image(
        self,
        db: Db,
        config: NamedDependency[Config],
        image_id: Annotated[int, Parameter(ge=1, description="a person's `image_id`")],
    ) -> Response[Any]:
        """The picture, with the type it was stored as; its content never changes (the name
        is its hash), so clients may cache it for good."""
        found = await stored_image(db, config, image_id)
        if found is None:
            raise NotFound("image_id", f"no stored image {image_id}")
        return found


async def stored_image(
    db: AsyncConnection[Any], config: Config, image_id: int
) -> Response[Any] | None:
    """The response serving stored image ``image_id`` (API and pages), None when it is gone."""
    row = await get_image(db, image_id)
    if row is None:
        return None
    media_type = row.content_type or "application/octet-stream"
    if row.content is not None:
        return Response(
            row.content,
            media_type=media_type,
            headers={"Content-Disposition": "inline", **_CACHE_FOR_GOOD},
        )
    path = image_file(images_dir(config.data_path), row.local_path)
    if path is None:
        return None
    return File(
        path=path,
        media_type=media_type,
        content_disposition_type="inline",
        headers=_CACHE_FOR_GOOD,
    )


_CACHE_FOR_GOOD = {"Cache-Control": "private, max-age=31536000, immutable"}
