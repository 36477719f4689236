"""Access keys, account ids, and the encryption that keeps secret keys off the disk in clear.

SigV4 is an HMAC, so the server needs the secret itself (a hash will not do): secrets
are encrypted with Fernet under a master key kept outside the database (a 0600 file in
the home folder, or ``KENNEL_MASTER_KEY`` for servers that share one database).
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from kennel._errors import InternalError

_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_access_key_id(prefix: str = "AKIA") -> str:
    """An AWS-shaped key id: AKIA (long-term) or ASIA (temporary) + 16 characters."""
    return prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_account_id() -> str:
    return str(secrets.choice(range(1, 10))) + "".join(
        secrets.choice(string.digits) for _ in range(11)
    )


class SecretBox:
    """Encrypts and decrypts secret keys with the installation's master key."""

    def __init__(self, master_key: bytes) -> None:
        self._fernet = Fernet(master_key)

    @classmethod
    def from_file_or_env(cls, key_file: Path, env_key: str | None) -> SecretBox:
        """Use ``KENNEL_MASTER_KEY`` if given, else the key file (created 0600 on first use)."""
        if env_key:
            return cls(env_key.encode())
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(key_file.read_bytes().strip())

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise InternalError(
                "A stored secret key cannot be decrypted with this server's master key.",
                hint="Start the server with the KENNEL_MASTER_KEY (or master.key file) that "
                "created the database.",
            ) from exc
