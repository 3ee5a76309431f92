"""`cms-pipeline web`: a small read-only HTTP server for the dashboard. It answers GET and
HEAD with what `dashboard.Dashboard` says (the routes are listed there), adding the
headers every answer carries (no caching, no sniffing, a content security policy);
writes get 501.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cms_pipeline.web.dashboard import Dashboard


def make_server(dashboard: Dashboard, listener) -> ThreadingHTTPServer:
    """A threading HTTP server over an already bound socket (`cms-pipeline web` binds it,
    so the address it prints is the one served, port 0 included)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "cms-pipeline-web"

        def _send(self, head_only: bool) -> None:
            response = dashboard.handle(self.path)
            kind = response.content_type
            if kind.startswith("text/") or kind.endswith(("json", "javascript")):
                kind += "; charset=utf-8"
            self.send_response(response.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", response.policy)
            self.end_headers()
            if not head_only:
                self.wfile.write(response.body)

        def do_GET(self):  # noqa: N802 (http.server's name)
            self._send(head_only=False)

        def do_HEAD(self):  # noqa: N802
            self._send(head_only=True)

        def log_message(self, format, *args):  # noqa: A002 (quiet: one line per error only)
            if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
                super().log_message(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self):  # the socket is bound already
            self.server_address = self.socket.getsockname()
            host, port = self.server_address[:2]
            self.server_name, self.server_port = host, port

    server = Server(listener.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_bind()
    return server
