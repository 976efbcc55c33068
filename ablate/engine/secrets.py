"""Storage passwords: remembered when a URL is opened, masked in every message, log and file."""

from __future__ import annotations

import contextlib
import re

_SECRETS: set[str] = set()  # passwords of storage URLs opened by this process
_PASSWORD_RE = re.compile(r"://[^/@:\s]*:([^@\s]+)@")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs, messages and files."""
    remember_secret(url)
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<storage URL>" if "@" in url else url


def remember_secret(url: str | None) -> None:
    """Note a URL's password so that no message of this process ever shows it."""
    if not url:
        return
    match = _PASSWORD_RE.search(url)
    if match:
        _SECRETS.add(match.group(1))
        with contextlib.suppress(Exception):
            from urllib.parse import unquote

            _SECRETS.add(unquote(match.group(1)))


def scrub(text: str) -> str:
    """``text`` with every known storage password replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return scrub((text[0] if text else type(err).__name__)[:300])
