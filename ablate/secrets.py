"""Storage passwords: never shown. URLs are masked wherever they are printed or saved, and any
text leaving ablate (messages, logs, tracebacks) is scrubbed of passwords standing as passwords.

Nothing is remembered: a password is recognised where it stands in a connection string --
``scheme://user:password@host`` or ``password=...`` -- which is where database drivers and
ablate's own messages put one, so the rule holds in every process without state.
"""

from __future__ import annotations

import re

#: ``://user:password@`` (the password: anything up to the last @ before the host) and
#: ``password=secret`` / ``password: 'secret'`` (libpq's and most drivers' key words).
_IN_URL = re.compile(r"(://[^/@:\s]*:)([^\s/]+)(@)")
_AS_KEY = re.compile(r"""(\bpassword\s*[=:]\s*['"]?)([^'"\s&;,]+)""", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs, messages and files."""
    return scrub(url)


def scrub(text: str) -> str:
    """``text`` with every password in a connection string replaced by ***."""
    text = _IN_URL.sub(lambda m: m.group(1) + "***" + m.group(3), text)
    return _AS_KEY.sub(lambda m: m.group(1) + "***", text)


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its class name if it has none), scrubbed and
    cut to 300 characters: enough to say what happened in a one-paragraph message."""
    text = str(err).strip().splitlines()
    return scrub((text[0] if text else type(err).__name__)[:300])
