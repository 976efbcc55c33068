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


#: A password at least this long is masked wherever it appears; a shorter one only where it
#: stands as a password (``:secret@`` in a URL, ``password=secret``), so that a password such
#: as "ablate" does not mask every other word of a message.
_ANYWHERE = 8


def scrub(text: str) -> str:
    """``text`` with every known storage password replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if not secret:
            continue
        if len(secret) >= _ANYWHERE:
            text = text.replace(secret, "***")
        else:
            quoted = re.escape(secret)
            text = re.sub(rf"(:){quoted}(@)|(password\s*[=:]\s*['\"]?){quoted}(?=['\"\s&;,]|$)",
                          lambda m: (m.group(1) or m.group(3)) + "***" + (m.group(2) or ""),
                          text, flags=re.IGNORECASE)  # fmt: skip
    return text


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return scrub((text[0] if text else type(err).__name__)[:300])
