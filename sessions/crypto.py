"""Encryption at rest for stored login sessions (Fernet: AES-128-CBC with HMAC-SHA256).

Where the key comes from, first match wins:

1. ``secret_key`` (``ROOMWATCH_SECRET_KEY``):

   * a Fernet key (44 url-safe base64 characters; make one with
     ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
     is used as is;
   * anything else is a passphrase of at least 16 characters. Each session then gets its own
     random 16-byte salt and its key is derived with scrypt (n=2**15, r=8, p=1, about 0.1 s and
     32 MiB), so the passphrase alone opens the sessions on any machine and nothing but the salt
     is stored next to them.

2. Otherwise ``data_dir/secret.key``, generated on first use. It is written to a temporary file
   created with ``O_EXCL`` and mode 0600, then hard-linked into place, so two processes starting
   at once agree on one complete key (the loser of the link reads the winner's file).

A stored session (its row's ``state``; a file before migration 0018) is one header line, then
the Fernet token::

    roomwatch-session 1 key\\n<token>
    roomwatch-session 1 scrypt <salt, url-safe base64>\\n<token>

Every key and passphrase is registered with :func:`roomwatch.logs.register_secret`. Losing the
key loses the sessions (log in again); there is no recovery by design.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from roomwatch.config import Config
from roomwatch.errors import ConfigError, SessionError
from roomwatch.logs import register_secret

KEY_FILE_NAME = "secret.key"
MIN_PASSPHRASE_LENGTH = 16
_MAGIC = b"roomwatch-session"
_VERSION = b"1"
_SALT_BYTES = 16
_SCRYPT_N = 2**15
_log = logging.getLogger(__name__)


def _fernet_key(value: str) -> bytes | None:
    """``value`` as Fernet key bytes if it is one (32 bytes in url-safe base64), else None."""
    try:
        # validate=True: the lenient default skips stray characters, so "my pass phrase..." of
        # the right length could otherwise pass for a key.
        raw = base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return value.encode("ascii") if len(raw) == 32 and len(value) == 44 else None


class SessionCipher:
    """Encrypts and decrypts stored sessions with one key or one passphrase."""

    def __init__(self, *, key: bytes | None = None, passphrase: str | None = None, source: str):
        """Create a cipher from exactly one of ``key`` and ``passphrase``.

        Args:
            key: A Fernet key (url-safe base64 bytes).
            passphrase: A passphrase; each session's key is derived from it with scrypt.
            source: Where the secret came from, for error messages (never the secret itself).
        """
        if (key is None) == (passphrase is None):
            raise ValueError("give exactly one of key and passphrase")
        self.source = source
        self._fernet = Fernet(key) if key is not None else None
        self._passphrase = passphrase
        self._derived: dict[bytes, Fernet] = {}

    def _for_salt(self, salt: bytes) -> Fernet:
        if salt not in self._derived:
            assert self._passphrase is not None
            kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1)
            key = base64.urlsafe_b64encode(kdf.derive(self._passphrase.encode("utf-8")))
            register_secret(key.decode("ascii"))
            self._derived[salt] = Fernet(key)
        return self._derived[salt]

    def encrypt(self, plaintext: bytes) -> bytes:
        """The stored form (header line and token) of ``plaintext``."""
        if self._fernet is not None:
            return b"%s %s key\n%s" % (_MAGIC, _VERSION, self._fernet.encrypt(plaintext))
        salt = secrets.token_bytes(_SALT_BYTES)
        token = self._for_salt(salt).encrypt(plaintext)
        salt_text = base64.urlsafe_b64encode(salt)
        return b"%s %s scrypt %s\n%s" % (_MAGIC, _VERSION, salt_text, token)

    def decrypt(self, blob: bytes, *, name: str) -> bytes:
        """The plaintext of a blob written by :meth:`encrypt`.

        Args:
            blob: What :meth:`encrypt` returned (a session's stored state).
            name: Which session it is (``#12``), for error messages.

        Raises:
            SessionError: Not a stored session, or the key does not open it (the message says
                which key source was tried, never the key).
        """
        header, _, token = blob.partition(b"\n")
        parts = header.split(b" ")
        if len(parts) < 3 or parts[0] != _MAGIC or parts[1] != _VERSION:
            raise SessionError(f"session {name}: not an encrypted roomwatch session")
        kind = parts[2]
        if kind == b"key" and len(parts) == 3 and self._fernet is not None:
            fernet = self._fernet
        elif kind == b"scrypt" and len(parts) == 4 and self._passphrase is not None:
            try:
                salt = base64.urlsafe_b64decode(parts[3])
            except (binascii.Error, ValueError):
                raise SessionError(f"session {name}: damaged header") from None
            fernet = self._for_salt(salt)
        elif kind in (b"key", b"scrypt"):
            used = "a passphrase" if kind == b"scrypt" else "a key"
            raise SessionError(
                f"cannot decrypt session {name}: it was encrypted with {used}, but the "
                f"secret now comes from {self.source}; restore the old secret or log in again"
            )
        else:
            raise SessionError(f"session {name}: unknown encryption {kind!r}")
        try:
            return fernet.decrypt(token)
        except InvalidToken:
            raise SessionError(
                f"cannot decrypt session {name}: wrong secret key ({self.source}) or "
                "damaged data; restore the old secret or log in again"
            ) from None


def load_cipher(config: Config) -> SessionCipher:
    """The cipher for this installation (see the module docstring for the key's source).

    Raises:
        ConfigError: ``secret_key`` is neither a Fernet key nor a long enough passphrase.
        SessionError: The key file exists but is unreadable or not a key.
    """
    if config.secret_key:
        register_secret(config.secret_key)
        key = _fernet_key(config.secret_key)
        if key is not None:
            return SessionCipher(key=key, source="ROOMWATCH_SECRET_KEY")
        if len(config.secret_key) < MIN_PASSPHRASE_LENGTH:
            raise ConfigError(
                "secret_key (ROOMWATCH_SECRET_KEY): expected a Fernet key or a passphrase of "
                f"at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        return SessionCipher(passphrase=config.secret_key, source="ROOMWATCH_SECRET_KEY")
    path = config.data_path / KEY_FILE_NAME
    key = _read_or_create_key(path)
    register_secret(key.decode("ascii"))
    return SessionCipher(key=key, source=str(path))


def _read_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        _create_key_file(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise SessionError(f"cannot read the session key {path} ({reason})") from None
    key = _fernet_key(text)
    if key is None:
        raise SessionError(f"{path} is not a valid key; restore it, or move it away to start over")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("%s is readable by other users; run: chmod 600 %s", path, path)
    return key


def _create_key_file(path: Path) -> None:
    key = Fernet.generate_key()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race; its complete key is read by the caller
        else:
            _log.info("generated the session key %s", path)
    finally:
        temporary.unlink(missing_ok=True)
