"""gunicorn's access log for this service: method, path, status, bytes and milliseconds, nothing else.

No client address, user agent, referrer or query string is written (promise P1), and none is even
read: gunicorn's own logger gathers some twenty fields and every request header for each line,
which on a busy submission endpoint costs more than writing the line (issue 7).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gunicorn.glogging import Logger

ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(B)s %(M)sms"


class AccessLogger(Logger):
    """Builds only the atoms :data:`ACCESS_LOG_FORMAT` uses."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> dict[str, Any]:
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        return {
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "s": status,
            "B": getattr(resp, "sent", None),
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
        }
