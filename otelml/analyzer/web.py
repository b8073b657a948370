"""What the analyzer's HTTP servers share (the OTLP/HTTP receiver and the status API): a tornado application on
its own IOLoop thread, TLS from the settings, and the bearer-token check."""

from __future__ import annotations

import asyncio
import hmac
import ssl
import threading

try:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
except ImportError:  # pragma: no cover - depends on the install
    tornado = None


def token_ok(expected: str | None, header: str | None) -> bool:
    if not expected:
        return True
    return header is not None and hmac.compare_digest(header.encode(), f"Bearer {expected}".encode())


def _address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def require_tornado():
    if tornado is None:
        raise RuntimeError("the analyzer's HTTP servers need tornado: pip install 'otelml[analyzer]'")


class HttpThread:
    """A tornado application on its own IOLoop thread."""

    def __init__(self, app, address: str, ssl_context, max_body: int):
        host, port = _address(address)
        self._ready = threading.Event()
        self._app, self._host, self._port, self._ssl, self._max_body = app, host, port, ssl_context, max_body
        self._loop = None
        self._thread = threading.Thread(target=self._run, name=f"http-{port}", daemon=True)
        self.error = None

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = asyncio.get_event_loop()
        try:
            server = tornado.httpserver.HTTPServer(
                self._app, ssl_options=self._ssl, max_body_size=self._max_body, decompress_request=False
            )
            sockets = tornado.netutil.bind_sockets(self._port, address=self._host)
            self.port = sockets[0].getsockname()[1]
            server.add_sockets(sockets)
        except Exception as exc:
            self.error = exc
            self._ready.set()
            return
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        if self.error is not None:
            raise OSError(f"cannot listen on {self._host}:{self._port}: {self.error}")

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._server.stop)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def ssl_context(config):
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context
