"""The one TLS context of the agent: the daemon's device API and `pyupdate install URL`.

The system's CAs are trusted, plus `ServerCertificate` (a private CA, PEM) when
set; `SkipVerify` turns verification off, and says so in the log. Mender 3.4's
rules for the same two keys.
"""

from __future__ import annotations

import logging
import ssl

from .errors import ConfigError

log = logging.getLogger(__name__)


def tls_context(ca_file: str | None, skip_verify: bool) -> ssl.SSLContext:
    """A client context: system CAs + `ca_file`; no verification with `skip_verify`.

    A `ca_file` that cannot be loaded is a ConfigError: no retry will load it.
    """
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"ServerCertificate {ca_file}: cannot load ({err})") from None
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning("certificate verification skipped (SkipVerify)")
    return context
