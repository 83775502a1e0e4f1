"""``python -m shared.local serve``: the HTTP-triggered function over a run folder, on http.server.

The request reaches the very function object Azure calls (``function_app.app``'s
HTTP trigger), as a ``func.HttpRequest`` with the ``{*path}`` route parameter, and
its ``func.HttpResponse`` goes back as it is. Nothing is logged per request: the
path is the victim's credential.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import azure.functions as func

from shared import bootstrap
from shared.local.host import functions_of
from shared.settings import load_settings

MAX_BODY = 1024 * 1024  # more than any page's form; the Functions host has its own limit

HttpFunction = Callable[[func.HttpRequest], func.HttpResponse]


def http_function(app: func.FunctionApp) -> HttpFunction:
    """The app's one HTTP-triggered function, called with its request by its binding's name."""
    found = []
    for function in functions_of(app):
        trigger = function.get_trigger()
        if trigger is not None and trigger.get_dict_repr()["type"] == "httpTrigger":
            found.append((function.get_user_function(), trigger.get_dict_repr()["name"]))
    if len(found) != 1:
        raise ValueError(f"the app has {len(found)} HTTP-triggered functions; serve expects one")
    user_function, argument = found[0]
    # One request in the function at a time: the embedded SQLite store is one connection, not
    # for concurrent threads (the server's threads still read and write the sockets in parallel).
    one_at_a_time = threading.Lock()

    def call(request: func.HttpRequest) -> func.HttpResponse:
        with one_at_a_time:
            response: func.HttpResponse = user_function(**{argument: request})
        return response

    return call


def _handler(function: HttpFunction) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            host = self.headers.get("Host", "localhost")
            request = func.HttpRequest(
                method=self.command,
                url=f"http://{host}{self.path}",
                headers=dict(self.headers.items()),
                params={name: values[0] for name, values in parse_qs(url.query).items()},
                route_params={"path": unquote(url.path).lstrip("/")},
                body=body,
            )
            response = function(request)
            payload = response.get_body()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request line holds the link, which is the victim's credential

    return Handler


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser that hangs up is no error; a failing function answered 500 already


def make_server(data: Path, host: str = "127.0.0.1", port: int = 8080) -> PageServer:
    """A server over the run folder ``data`` (its settings, state and key), the services installed.

    Port 0 picks a free one (``server.server_address``)."""
    settings = load_settings(LOCAL_DATA_DIR=data)
    services = bootstrap.bootstrap(settings, files_only=True)
    bootstrap.install(services)
    app = importlib.import_module("function_app").app
    return PageServer((host, port), _handler(http_function(app)))


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"
