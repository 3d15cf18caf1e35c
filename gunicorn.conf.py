"""gunicorn settings for this service (``gunicorn -c gunicorn.conf.py wsgi:app``).

Sync workers, about one per core plus one: the work is CPU-bound (validation, JSON) and the ceilings
report measured no gain from more workers or from threads on two cores. Every setting can be
overridden with the usual GUNICORN_* style command-line flags or the environment variables below.
"""

import multiprocessing
import os

from survey.access_log import ACCESS_LOG_FORMAT
from survey.server_close import close_finished_connection

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WORKERS", multiprocessing.cpu_count() + 1))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
max_requests = 100_000  # recycle workers now and then (at 5,000 a viral load restarted each every ~10 s);
max_requests_jitter = 10_000  # jitter keeps them from restarting together
limit_request_line = 4094
limit_request_fields = 60
limit_request_field_size = 8190

# Access log without the client address, user agent or referrer (promise P1): method, path
# (no query string), status, size and duration only (see survey/access_log.py).
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
logger_class = "survey.access_log.AccessLogger"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# A sync worker takes its next client as soon as a response is sent, instead of waiting for the
# client to close first, when the request was read whole (see survey/server_close.py).
post_request = close_finished_connection
