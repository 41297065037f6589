"""A loopback HTTP proxy in front of moto's Secrets Manager, for what moto does not do by itself:

- answer ``ThrottlingException`` to the next N calls of an operation, as Secrets Manager does when a
  caller goes over its request quota;
- slow every call down, so a test can stop a run half-way;
- report ``LastAccessedDate`` for chosen secrets in ListSecrets (moto always reports none);
- count the calls per operation.

Requests arrive as the AWS JSON protocol (POST /, ``X-Amz-Target: secretsmanager.<Operation>``) and
go on to moto unchanged (moto does not check signatures).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# What Secrets Manager answers a caller over its quota.
THROTTLED = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()


class SecretsManagerProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.throttle: Counter[str] = Counter()   # operation -> calls still to refuse
        self.delay = 0.0
        self.last_accessed: dict[str, dt.date] = {}
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                status, payload, content_type = proxy._handle(operation, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _handle(self, operation: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        with self._lock:
            self.calls[operation] += 1
            refuse = self.throttle[operation] > 0
            if refuse:
                self.throttle[operation] -= 1
                self.throttled[operation] += 1
        if refuse:
            return 400, THROTTLED, "application/x-amz-json-1.1"
        if self.delay:
            time.sleep(self.delay)
        forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")}
        resp = self._session.post(self.upstream + "/", data=body, headers=forward, timeout=60)
        payload = resp.content
        if operation == "ListSecrets" and resp.status_code == 200 and self.last_accessed:
            listing = json.loads(payload)
            for entry in listing.get("SecretList", []):
                day = self.last_accessed.get(entry.get("Name"))
                if day is not None:
                    # Secrets Manager reports the day only: midnight UTC, as epoch seconds.
                    entry["LastAccessedDate"] = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
            payload = json.dumps(listing).encode()
        return resp.status_code, payload, resp.headers.get("Content-Type", "application/x-amz-json-1.1")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._session.close()
