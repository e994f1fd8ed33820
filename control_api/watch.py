"""``PUT /persons/{username}/watch``: put a person on the watch list or take them off;
``PUT /persons/{username}/mute``: keep their going live quiet, or not.

A watched person is a person of interest (CBHours stats, thumbnails) like a followed one.
Watching a username never seen creates the person; the username must be one the site could
have (the parsers' rule, :func:`formats.markup.valid_username`), else 400 naming
``username``. The API's own person cache is dropped after the write, so the next read of this
person (or of the list) shows the flag at once.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, put
from litestar.params import JSONBody

from control_api.params import Db, Persons, Username
from control_api.problems import problem_spec
from formats.markup import valid_username
from roomwatch.errors import InvalidInput
from storage.watch_list import MuteState, WatchState, set_mute_async, set_watch_async


class WatchChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The watch flag to set.

    Attributes:
        watch: true puts the person on the watch list, false takes them off.
    """

    watch: bool


class MuteChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The mute flag to set.

    Attributes:
        mute: true: the person's going live is never told; false: it is again.
    """

    mute: bool


def _checked(username: str) -> str:
    name = valid_username(username)
    if name is None or name != username.lower():
        raise InvalidInput("username", "expected 2-64 letters, digits or _", source="path")
    return name


class WatchController(Controller):
    """The watch list, one person at a time (``roomwatch watch`` is the CLI twin)."""

    path = "/persons"
    tags = ("persons",)

    @put(
        "/{username:str}/watch",
        summary="Put a person on the watch list or take them off",
        responses={400: problem_spec("The username or the body is invalid; `field` names it")},
    )
    async def change(
        self, db: Db, persons: Persons, username: Username, data: JSONBody[WatchChange]
    ) -> WatchState:
        """The person's username (lower-cased) and watch state after the change. Watching a
        username never seen creates the person; unwatching one creates nobody."""
        [state] = await set_watch_async(db, [_checked(username)], data.watch)
        persons.forget()
        return state

    @put(
        "/{username:str}/mute",
        summary="Mute or unmute a person's going-live alerts",
        responses={400: problem_spec("The username or the body is invalid; `field` names it")},
    )
    async def mute(
        self, db: Db, persons: Persons, username: Username, data: JSONBody[MuteChange]
    ) -> MuteState:
        """The person's username (lower-cased) and mute state after the change. Muting a
        username never seen creates the person (the mute holds when they appear); unmuting one
        creates nobody. Only the going-live alert is muted (``roomwatch watch mute`` is the CLI
        twin)."""
        [state] = await set_mute_async(db, [_checked(username)], data.mute)
        persons.forget()  # a person may have been created
        return state
