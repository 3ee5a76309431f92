"""Prefect flows: thin, each task calls the library.

Every deployment's entrypoint (prefect.yaml) is a module of this package, so importing it
is where a flow run that a Prefect worker started in a fresh interpreter sets up logging
as the CLI does: the library's records (ingest progress, gate summaries) then reach the
run's logs in Prefect and stderr, in the configured format and from the configured level.
Elsewhere (the CLI, tests) this does nothing.
"""

from cms_pipeline import logs

logs.configure_flow_run_process()
