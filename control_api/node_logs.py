"""The tail of a crawl log kept on a Scrapyd node: a job the ``scrapyd`` runner ran has its
node's log URL as ``log_path`` (``roomwatch.scrapyd_nodes``).

Only the log of a configured node is fetched (``scrapyd.urls``; never any other URL the
database holds), from that node's configured root and with its basic auth. Scrapyd serves logs
with twisted's static ``File``, which honours ``Range``; a suffix range (``bytes=-N``) longer
than the file makes it fail (HTTP 500), so the size comes first (``HEAD``), then ranges with a
start, from the end backwards, until the lines are there. A node that ignores ``Range`` is read
whole, up to :data:`WHOLE_CAP` bytes. Messages name the node by host and port only.
"""

from __future__ import annotations

import httpx

from roomwatch.config import ScrapydConfig
from roomwatch.errors import NotFound, ScrapydError
from roomwatch.scrapyd_nodes import NodeAddress, log_node

FIRST_BLOCK = 64 * 1024
TAIL_CAP = 8 * 1024 * 1024  # read from the end at most: 5,000 lines of 1.6 KiB
WHOLE_CAP = 32 * 1024 * 1024  # a node that ignores Range: its log read whole, at most


async def node_log_tail(settings: ScrapydConfig, job_id: int, url: str, lines: int) -> str:
    """The last ``lines`` lines of the node log at ``url``.

    Raises:
        NotFound: ``url`` is not a log of a node of ``scrapyd.urls`` (not fetched), or the
            node has no such log (naming ``job_id``).
        ScrapydError: the node did not answer, refused the credentials or failed (a 502).
    """
    found = log_node(settings, url)
    if found is None:
        raise NotFound(
            "job_id",
            f"the log of crawl job #{job_id} is not on this agent's machine nor on a Scrapyd "
            "node of scrapyd.urls",
        )
    node, path = found
    async with httpx.AsyncClient(
        base_url=node.url,
        auth=node.auth,
        timeout=settings.timeout_seconds,
        follow_redirects=False,
    ) as client:
        try:
            data = await _tail_bytes(client, node, path, job_id, lines)
        except httpx.HTTPError as exc:
            raise ScrapydError(
                f"Scrapyd node {node.name} did not answer for the log of crawl job #{job_id} "
                f"({type(exc).__name__})",
                answered=False,
            ) from None
    text = data.decode("utf-8", errors="replace")
    return "".join(text.splitlines(keepends=True)[-lines:])


async def _tail_bytes(
    client: httpx.AsyncClient, node: NodeAddress, path: str, job_id: int, lines: int
) -> bytes:
    head = await client.head(path)
    _check(head, node, job_id)
    length = head.headers.get("content-length", "")
    if head.headers.get("accept-ranges") != "bytes" or not length.isdigit():
        return await _whole(client, node, path, job_id)
    size = int(length)
    data = b""
    position = size
    block = FIRST_BLOCK
    while position > 0 and data.count(b"\n") <= lines and size - position < TAIL_CAP:
        start = max(0, position - block)
        response = await client.get(path, headers={"Range": f"bytes={start}-{position - 1}"})
        _check(response, node, job_id)
        if response.status_code != 206:  # the range ignored (200), or not satisfiable (416)
            return await _whole(client, node, path, job_id)
        data = response.content + data
        position = start
        block *= 2
    return data


async def _whole(client: httpx.AsyncClient, node: NodeAddress, path: str, job_id: int) -> bytes:
    """The whole log, keeping its last :data:`TAIL_CAP` bytes; refused past :data:`WHOLE_CAP`."""
    response = await client.send(client.build_request("GET", path), stream=True)
    try:
        _check(response, node, job_id)
        kept = bytearray()
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > WHOLE_CAP:
                raise ScrapydError(
                    f"Scrapyd node {node.name} serves the log of crawl job #{job_id} only "
                    f"whole, and it is over {WHOLE_CAP // 2**20} MiB",
                    answered=True,
                )
            kept += chunk
            del kept[:-TAIL_CAP]
        return bytes(kept)
    finally:
        await response.aclose()


def _check(response: httpx.Response, node: NodeAddress, job_id: int) -> None:
    """Raises unless ``response`` carries (part of) the log."""
    status = response.status_code
    if status in (200, 206, 416):
        return
    if status == 404:
        raise NotFound(
            "job_id", f"Scrapyd node {node.name} has no log of crawl job #{job_id} (HTTP 404)"
        )
    if status == 401:
        raise ScrapydError(
            f"Scrapyd node {node.name} refused the credentials (HTTP 401): check "
            "scrapyd.username/password or the node URL",
            answered=True,
        )
    raise ScrapydError(
        f"Scrapyd node {node.name} answered HTTP {status} for the log of crawl job #{job_id}",
        answered=status < 500,
    )
