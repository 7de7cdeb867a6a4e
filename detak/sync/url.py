"""The server URL a kiosk may talk to (docs/sync.md §2): ``https://`` anything, plain
``http://`` only to a loopback address unless the user said ``--insecure``.

>>> check_server_url("https://clinic.example.org/")
'https://clinic.example.org'
>>> check_server_url("http://127.0.0.1:8000"), check_server_url("http://localhost:8000")
('http://127.0.0.1:8000', 'http://localhost:8000')
>>> check_server_url("http://clinic.example.org")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.sync.errors.InsecureURLError: refusing plain http:// to clinic.example.org...
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from detak.sync.errors import InsecureURLError


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, insecure: bool = False) -> str:
    """``url`` without a trailing slash, or `InsecureURLError` (also for a URL that is not
    http(s) or has no host, or carries a query, fragment or user name)."""
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InsecureURLError(f"{url!r} is not an http(s) URL of a server "
                               "(e.g. https://clinic.example.org)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InsecureURLError(f"{url!r}: give the server URL without query, fragment or "
                               "user name")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise InsecureURLError(
            f"refusing plain http:// to {parts.hostname}: the link would carry residents' "
            "data unencrypted; use https:// (TLS at the clinic's reverse proxy) or pass "
            "--insecure on a network you trust")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
