"""The H2O cluster this process trains on: an existing one by URL, or a local one.

Environment: CMS_PIPELINE_H2O_URL (connect, e.g. http://h2o:54321), otherwise a local
JVM with CMS_PIPELINE_H2O_MEM (default 4g) and CMS_PIPELINE_H2O_THREADS (default -1 =
all cores), on CMS_PIPELINE_H2O_PORT (default 54321; h2o.init joins any cluster already
on that port, so tests and benchmarks pick a free port). h2o.init's JVM is a separate process from any JPype JVM here.
"""

from __future__ import annotations

import os


def ensure_h2o(max_mem: str | None = None, nthreads: int | None = None, port: int | None = None):
    import h2o

    from cms_pipeline.runtime import prepare_environment

    prepare_environment()
    url = os.environ.get("CMS_PIPELINE_H2O_URL")
    try:
        conn = h2o.connection()
        if conn is not None and conn.cluster is not None and conn.cluster.is_running():
            return h2o
    except Exception:  # noqa: BLE001 - no connection yet
        pass
    if url:
        h2o.init(url=url, verbose=False)
    else:
        h2o.init(
            nthreads=nthreads or int(os.environ.get("CMS_PIPELINE_H2O_THREADS", "-1")),
            max_mem_size=max_mem or os.environ.get("CMS_PIPELINE_H2O_MEM", "4g"),
            port=port or int(os.environ.get("CMS_PIPELINE_H2O_PORT", "54321")),
            verbose=False,
        )
    h2o.no_progress()
    return h2o
