"""`cms-pipeline web`: the dashboard over the lake's gold exports (cms_pipeline/web)."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.02 s (measured 2026-12-08, 2 cores).

from __future__ import annotations

import json
import socket
from typing import Annotated

import typer

from cms_pipeline.cli.common import (
    JsonOption,
    LakeOption,
    ProfileOption,
    console,
    serve_until_stopped,
    settings_for,
)
from cms_pipeline.config import ConfigError


def web(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one, printed)")] = 8050,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the dashboard over the lake's exports, read-only, until stopped (Ctrl-C).

    It needs no Spark: it reads the JSON documents `cms-pipeline run` (or `export` and
    `score`) wrote; the page names any export that is missing and the command that makes
    it. With --json, one JSON line on stdout gives the URL and the exports found.
    """
    from cms_pipeline.web.dashboard import Dashboard
    from cms_pipeline.web.server import make_server

    settings = settings_for(lake, profile)
    try:
        dashboard = Dashboard(settings)
    except ConfigError as exc:
        console.print(f"[red]Configuration error[/red]\n{exc}")
        raise typer.Exit(2) from exc
    # bound here, so that the address printed is the one served, port 0 included
    listener = socket.create_server((host, port))
    url = f"http://{host}:{listener.getsockname()[1]}/"
    status = dashboard.status()
    if as_json:
        print(json.dumps({"url": url, **status}, default=str), flush=True)
    else:
        console.print(f"Serving the dashboard on {url} (lake {settings.lake}; Ctrl-C stops it)")
        for item in status["missing"]:
            console.print(
                f"[yellow]missing export:[/yellow] {item['export']}; make it with {item['make']}"
            )
    serve_until_stopped(make_server(dashboard, listener))


def register(app: typer.Typer) -> None:
    app.command("web")(web)
