"""Gated builds: build a layer into its own schema, publish it only after its gate passes.

    build_layer(settings, spark, "silver", build_id)   # dbt build -> silver_build_<id>
    ... quality gate on result.schema ...
    promote(settings, spark, "silver", build_id)       # silver.<x> -> views on the build

A failed build or gate never touches the published schema: `promote` refuses a build whose
run record is not successful. The published build and the one before it are kept (for
`rollback`); older build schemas are dropped. Each run is recorded as JSON under
METADATA/dbt_runs and appended to the Delta table LAKE/_meta/dbt_runs, with the bronze
Delta versions it read.

The package, one module per idea (each imports only the ones listed before it):

    layers        one typed spec per layer (LayerSpec: what dbt selects, the layer it
                  reads, whether it has a per-batch store, what is published), the
                  names of their build schemas, and PublishError
    fingerprints  what goes into the code fingerprint and the silver store's fingerprint,
                  listed once
    records       the run record of a build (BuildResult, with its dbt run: RunRecord),
                  written and read back typed only here: JSON under METADATA/dbt_runs,
                  and a row in LAKE/_meta/dbt_runs to query the builds
    silver_store  the per-batch store of incremental silver: which store a silver build
                  adds to, what it added, what a publish may drop
    publishing    the publish history and the publish intent (journal) of each layer:
                  promote, rollback, and completing or undoing an interrupted publish
    builds        dbt builds of a layer into its build schema, with their unit tests; the
                  code fingerprint; whether the published layers are current

Import each name from the module that owns it (`from cms_pipeline.publish.builds import
build_layer`).
"""
