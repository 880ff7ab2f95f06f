"""HTTP/1.1 keep-alive for the emulator's werkzeug server.

werkzeug's development server answers every request with
``Connection: close`` because Python's http.server cannot tell where an
unread request body ends. AWS keeps connections open, and the SDKs pool
them, so a server that closes every connection makes each client call pay
for a TCP connect and close that production never sees (at 1,000 services
that was ~10% of the daemon's CPU per pass in the benchmark).

This handler reads each request body in full before the app runs, so the
next request line is always where the stream is, and then leaves the
connection open unless the client asked to close it. werkzeug also drains
"what is left of the body" after each response; on a kept connection that
would swallow the client's next request, so while the app runs the
handler's input stream reads as empty. An idle connection is
closed by the server after ``IDLE_SECONDS``, longer than the SDKs' own pool
idle timeouts (90 s for the Rust SDK, 60 s for botocore's default), so the
client always closes first and never sends on a connection the server is
closing.

Responses leave in two writes (status and headers, then the body). With
Nagle's algorithm on, the body would wait for the client to acknowledge the
headers, and a client on a long-lived connection delays that ACK by up to
40 ms: every call would stall ~40 ms, which AWS's front ends do not. So the
handler turns Nagle off (``TCP_NODELAY``) on each accepted connection.
"""

from __future__ import annotations

import io
import socket
from typing import Any

from werkzeug.serving import WSGIRequestHandler

IDLE_SECONDS = 300


class _BodyAlreadyRead:
    """The handler's input while a request is served: its body was read
    up front, so anything further on the socket is the next request."""

    def read(self, *_args: Any) -> bytes:
        return b""

    def readline(self, *_args: Any) -> bytes:
        return b""


class KeepAliveRequestHandler(WSGIRequestHandler):
    timeout = IDLE_SECONDS

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        stream = self.rfile
        try:
            super().run_wsgi()
        finally:
            self.rfile = stream

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):
            body = stream.read()  # chunked: werkzeug's dechunker stops at the end
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = stream.read(length) if length > 0 else b""
            if len(body) < length:  # the client went away mid-body
                self.close_connection = True
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = False
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        self.rfile = _BodyAlreadyRead()  # restored by run_wsgi
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug always sends "Connection: close", which would also set
        # close_connection; keep the connection unless the client (HTTP/1.0,
        # or "Connection: close") or a fault already decided otherwise.
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)
