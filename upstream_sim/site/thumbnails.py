"""Room thumbnails as the real thumbnail host serves them: ``GET /ri/<username>.jpg``.

Each username gets its own small JPEG, drawn deterministically from a hash of the name, so a
crawler that downloads the same room twice gets byte-identical content (what content-addressed
storage must recognise) and two rooms never share a picture. The Affiliate feed points its
``image_url`` here when its ``thumbnail_base`` is set to this server (tests do that).
"""

import hashlib
import io
from functools import lru_cache

from litestar import Controller, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from PIL import Image, ImageDraw

THUMBNAIL_PATH = "/ri/"
"""Where thumbnails are served, as on ``thumb.live.mmcdn.com``."""
_SIZE = (240, 180)


@lru_cache(maxsize=1024)
def thumbnail_jpeg(username: str) -> bytes:
    """The JPEG of one room: a background and three blocks whose colours come from the name."""
    digest = hashlib.sha256(username.encode()).digest()
    image = Image.new("RGB", _SIZE, (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    width, height = _SIZE
    for n in range(3):
        a, b, c, d = digest[4 + 4 * n : 8 + 4 * n]
        left, top = a % (width // 2), b % (height // 2)
        draw.rectangle(
            (left, top, left + width // 3, top + height // 3), fill=(c, d, (c + d) % 256)
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class ThumbnailController(Controller):
    """Thumbnails of any username (the real host answers for rooms that are offline too)."""

    @get(THUMBNAIL_PATH + "{image:str}")
    async def thumbnail(self, image: FromPath[str]) -> Response[bytes]:
        """``<username>.jpg`` as ``image/jpeg``; anything else is a 404."""
        username, dot, extension = image.rpartition(".")
        if not dot or extension != "jpg" or not username:
            raise NotFoundException()
        return Response(thumbnail_jpeg(username.lower()), media_type="image/jpeg")
