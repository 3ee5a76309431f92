"""The dbt docs site (dbt's `target/` folder: index.html, manifest.json, catalog.json)
served over HTTP on a socket the caller has bound, so `cms-pipeline docs serve --port 0`
prints the port it got. `dbt docs serve` cannot: it binds the port itself and prints the
number it was given (0 for port 0), and serves the same static files."""

from __future__ import annotations

import functools
import socket
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# What `dbt docs generate` writes and the page needs
SITE_FILES = ("index.html", "manifest.json", "catalog.json")


def missing_files(target: Path) -> list[str]:
    return [name for name in SITE_FILES if not (target / name).is_file()]


def make_server(target: Path, listener: socket.socket) -> ThreadingHTTPServer:
    """A threading HTTP server of the files under `target`, over a bound, listening socket."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self):  # the socket is bound already
            self.server_address = self.socket.getsockname()[:2]
            self.server_name, self.server_port = self.server_address

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(target))
    server = Server(listener.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_bind()
    return server
