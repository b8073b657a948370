"""The status page and API on ``--http``: ``GET /`` (the status page, HTML), ``GET /healthz`` (alive),
``GET /readyz`` (state loaded, receivers up), ``GET /api/models``, ``GET /api/health``, ``GET /api/alarms``.
``/api/*`` and the page need the bearer token when one is set."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..web import HttpThread, require_tornado, ssl_context, token_ok, tornado
from . import status_page

if TYPE_CHECKING:
    from ..service import Analyzer

JSON = "application/json"


def api_server(analyzer: Analyzer, address: str, receivers_up) -> HttpThread:
    require_tornado()
    token = analyzer.config.auth_token

    class Health(tornado.web.RequestHandler):
        def get(self):
            self.finish({"status": "ok"})

    class Ready(tornado.web.RequestHandler):
        def get(self):
            ok = analyzer.ready and receivers_up()
            self.set_status(200 if ok else 503)
            self.finish({"ready": ok})

    class Api(tornado.web.RequestHandler):
        def initialize(self, read):
            self.read = read

        def get(self):
            if not token_ok(token, self.request.headers.get("Authorization")):
                self.set_status(401)
                return self.finish({"error": "missing or wrong bearer token"})
            self.set_header("Content-Type", JSON)
            self.finish(json.dumps(self.read(), default=str))

    class Page(tornado.web.RequestHandler):
        def get(self):
            if not token_ok(token, self.request.headers.get("Authorization")):
                self.set_status(401)
                return self.finish("missing or wrong bearer token")
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(status_page.render(analyzer.page_data()))

    app = tornado.web.Application(
        [
            (r"/", Page),
            (r"/healthz", Health),
            (r"/readyz", Ready),
            (r"/api/models", Api, {"read": lambda: {"models": analyzer.models()}}),
            (r"/api/health", Api, {"read": analyzer.health}),
            (r"/api/alarms", Api, {"read": lambda: {"alarms": analyzer.alarms()}}),
        ]
    )
    return HttpThread(app, address, ssl_context(analyzer.config), 1024 * 1024)
