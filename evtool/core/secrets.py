"""Credentials never leave the process: every URL's password and every password= parameter as ***."""

from __future__ import annotations

import re

# scheme://user:password@host in any case and any scheme; the password runs to the last '@' of
# the line that a host follows, so one holding '@', a space, or an unencoded '/', '?' or '#'
# is still hidden whole (two such URLs on one line are hidden as one).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^\n]*@(?=[a-z0-9.%\[\]:-]+(?:[/?#\s,;)]|$))")
# key=value credentials in query strings and libpq-style DSNs
_PARAMETER = re.compile(
    r"(?i)\b((?:password|passwd|pwd|pass|secret|token|api_?key|sslpassword)=)[^&\s;]*")


def redact(text: str) -> str:
    """`text` with every credential it holds replaced by ***."""
    return _PARAMETER.sub(r"\1***", _USERINFO.sub(r"\1***@", text))
