"""`cms-pipeline transform | dbt | docs | export | cluster`: dbt silver and gold, docs,
exports, and a local Spark cluster for the `cluster` profile."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.07 s; dbt and PySpark are imported
# by the libraries when they run (measured 2026-12-08, 2 cores).

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cms_pipeline.cli.common import (
    JsonOption,
    LakeOption,
    console,
    emit,
    out,
    serve_until_stopped,
    settings_for,
    table,
    writes_lake,
)
from cms_pipeline.cli.quality import gate_verdict

DEFAULT_CLUSTER_ROOT = Path(tempfile.gettempdir()) / "cms-pipeline-cluster"
RootOption = Annotated[
    Path, typer.Option("--root", help="Folder of the cluster's metastore, warehouse and logs.")
]
LayerOption = Annotated[
    list[str] | None,
    typer.Option("--layer", help="Layer(s) to build: silver, gold (default: both, in order)."),
]


def _spark(settings):
    from cms_pipeline.spark import get_spark

    return get_spark(settings)


def render_builds(summary: dict) -> None:
    for build in summary["builds"]:
        status = "[green]ok[/green]" if build["success"] else "[red]FAILED[/red]"
        out.print(
            f"{build['layer']} build {build['build_id']} {status} in {build['elapsed']:.0f}s: "
            f"{len(build['models'])} tables, {len(build['tests'])} tests, "
            f"{len([t for t in build['tests'] if t['status'] in ('fail', 'error')])} failed"
        )
        if build["bronze_versions"]:
            versions = ", ".join(f"{k}@v{v}" for k, v in sorted(build["bronze_versions"].items()))
            out.print(f"  bronze read: {versions}")
        warned = [t for t in build["tests"] if t["status"] == "warn"]
        if warned:
            out.print(table("warnings", warned, ["name", "attached_to", "failures", "relation"]))
    for gate in summary["gates"].values():
        out.print(gate_verdict(gate))
    for layer, entry in summary["published"].items():
        out.print(f"published {layer} -> {entry['schema']}")
    for layer, reason in summary["refused"].items():
        out.print(f"[red]{layer} not published:[/red] {reason}")


def register(app: typer.Typer) -> None:
    @app.command("transform")
    @writes_lake("transform")
    def transform_command(
        lake: LakeOption = None,
        layer: LayerOption = None,
        publish: Annotated[
            bool,
            typer.Option(
                help="Publish each layer whose dbt build and Soda gate pass "
                "(--no-publish: build and check only)."
            ),
        ] = True,
        full_refresh: Annotated[
            bool,
            typer.Option(
                "--full-refresh",
                help="Rebuild from all of bronze: silver types every batch into a new store.",
            ),
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Build silver then gold with dbt on Spark (from the exact bronze Delta versions),
        each into its own build schema, check it with its Soda gate, and publish a layer
        only when both pass: the same steps as the pipeline's. Exits 1 when a build or a
        gate fails (the published layer is left as it was). Silver types only the bronze
        batches its per-batch store does not hold yet."""
        from cms_pipeline.publish.builds import new_build_id
        from cms_pipeline.quality.promotion import build_gate_publish, direct_steps

        settings = settings_for(lake)
        steps = direct_steps(settings, _spark(settings), full_refresh, publish)
        summary = {"builds": [], "gates": {}, "published": {}, "refused": {}}
        build_id = new_build_id()
        for name in layer or ["silver", "gold"]:
            console.print(f"[bold]dbt build[/bold] {name}, then its gate ...")
            outcome = build_gate_publish(name, build_id, steps)
            summary["builds"].append(outcome.build.to_dict())
            if outcome.gate:
                summary["gates"][name] = outcome.gate.to_dict()
            if outcome.published:
                summary["published"][name] = outcome.published
            if outcome.refused:
                summary["refused"][name] = outcome.refused
                break
        emit(summary, as_json, render_builds)
        if summary["refused"]:
            raise typer.Exit(1)

    @app.command("unit-test")
    def unit_test_command(
        lake: LakeOption = None, layer: LayerOption = None, as_json: JsonOption = False
    ) -> None:
        """Run the dbt unit tests on their own, while you change a model or macro: each
        layer is built empty (columns, no rows) into a scratch schema that is dropped after.
        Needs bronze (silver) or a published silver (gold); nothing is published."""
        from cms_pipeline.dbt_runner import DbtError
        from cms_pipeline.publish.builds import unit_test_layer

        settings = settings_for(lake)
        spark = _spark(settings)
        tests, failed = [], False
        for name in layer or ["silver", "gold"]:
            console.print(f"[bold]dbt unit tests[/bold] {name} ...")
            try:
                run = unit_test_layer(settings, spark, name)
            except DbtError as exc:
                run, failed = exc.run, True
                console.print(f"[red]{exc}[/red]")
            units = run.of_type("unit_test") if run else []
            tests += [{"layer": name, **n.to_dict()} for n in units]
        emit(
            {"unit_tests": tests},
            as_json,
            lambda s: out.print(
                table("dbt unit tests", s["unit_tests"], ["layer", "attached_to", "name", "status"])
            ),
        )
        if failed or any(t["status"] in ("fail", "error") for t in tests):
            raise typer.Exit(1)

    @app.command(
        "dbt",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    @writes_lake("dbt")
    def dbt_command(ctx: typer.Context, lake: LakeOption = None) -> None:
        """Run any dbt command on the pipeline's Spark session, e.g. `cms-pipeline dbt run`,
        `cms-pipeline dbt test -s beneficiary`, `cms-pipeline dbt docs generate`."""
        from cms_pipeline.dbt_runner import DbtError, run_dbt

        if not ctx.args:
            console.print("usage: cms-pipeline dbt <dbt command> [dbt options]")
            raise typer.Exit(2)
        settings = settings_for(lake)
        try:
            run_dbt(settings, list(ctx.args), quiet=False)
        except DbtError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc

    docs = typer.Typer(help="dbt docs site and the source -> target mapping document.")
    app.add_typer(docs, name="docs")

    @docs.command("generate")
    def docs_generate(lake: LakeOption = None) -> None:
        """`dbt docs generate` (catalog of the published schemas) and the mapping document."""
        from cms_pipeline.dbt_runner import DbtError, dbt_dir, run_dbt
        from cms_pipeline.mapping_doc import write_mapping_doc

        settings = settings_for(lake)
        try:
            run_dbt(settings, ["docs", "generate"])
        except DbtError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        out.print(f"dbt docs: {dbt_dir(settings) / 'target' / 'index.html'}")
        out.print(f"mapping: {write_mapping_doc(settings)}")

    @docs.command("serve")
    def docs_serve(
        lake: LakeOption = None,
        port: Annotated[int, typer.Option(help="Port of the docs site (0: a free one).")] = 8080,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    ) -> None:
        """Serve the dbt docs site (run `cms-pipeline docs generate` first) and print its
        URL; Ctrl+C stops."""
        import socket

        from cms_pipeline.dbt_runner import dbt_dir
        from cms_pipeline.docs_site import make_server, missing_files

        target = dbt_dir(settings_for(lake)) / "target"
        if missing := missing_files(target):
            console.print(
                f"[red]no docs under {target}[/red] ({', '.join(missing)} missing): "
                "run `cms-pipeline docs generate` first"
            )
            raise typer.Exit(1)
        # bound here, so that the URL printed is the one served, port 0 included
        try:
            listener = socket.create_server((host, port))
        except OSError as exc:
            console.print(
                f"[red]cannot listen on {host}:{port}[/red] ({exc.strerror}): "
                "pass another --port, or --port 0 for a free one"
            )
            raise typer.Exit(1) from exc
        server = make_server(target, listener)
        print(f"Serving the dbt docs on http://{host}:{server.server_port}/", flush=True)
        serve_until_stopped(server)

    cluster = typer.Typer(
        help="A Spark cluster on this machine (metastore, master, worker, Thrift Server) "
        "for trying the `cluster` profile."
    )
    app.add_typer(cluster, name="cluster")

    @cluster.command("start")
    def cluster_start(
        root: RootOption = DEFAULT_CLUSTER_ROOT,
        lake: Annotated[
            str | None, typer.Option("--lake", help="Lake the printed variables point at.")
        ] = None,
    ) -> None:
        """Start the cluster in the background and print the variables that point the
        `cluster` profile at it (`eval "$(cms-pipeline cluster start)"`)."""
        from cms_pipeline.spark_cluster import ClusterError, start_local_cluster

        console.print(f"starting a Spark cluster under {root} (logs in {root / 'logs'}) ...")
        try:
            started = start_local_cluster(root)
        except ClusterError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        for key, value in started.environment(lake=lake).items():
            out.print(f"export {key}={shlex.quote(value)}", soft_wrap=True)
        console.print(f"stop it with: cms-pipeline cluster stop --root {root}")

    @cluster.command("stop")
    def cluster_stop(root: RootOption = DEFAULT_CLUSTER_ROOT) -> None:
        """Stop the cluster started under --root."""
        from cms_pipeline.spark_cluster import stop_local_cluster

        if not stop_local_cluster(root):
            console.print(f"no cluster was started under {root} (no {root / 'cluster.json'})")
            raise typer.Exit(1)
        console.print(f"stopped the Spark cluster under {root}")

    @app.command("export")
    @writes_lake("export")
    def export_command(lake: LakeOption = None, as_json: JsonOption = False) -> None:
        """Write the published gold tables for analytics (Parquet/Delta) and JSON documents
        for the web, as config/storage.yaml says."""
        from cms_pipeline.exports import export_all

        settings = settings_for(lake)
        report = export_all(settings, _spark(settings))

        def render(summary: dict) -> None:
            rows = [{"table": k, "location": v} for k, v in summary["analytics"].items()]
            out.print(table("analytics exports", rows))
            for key, value in summary["web"].items():
                out.print(f"web {key}: {value}")

        emit(report.to_dict(), as_json, render)
