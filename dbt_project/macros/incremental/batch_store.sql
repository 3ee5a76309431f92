{#
  Incremental silver (README "Incremental silver"): the expensive part of a silver build,
  typing and decoding wide rows, is kept per bronze batch in an unpublished store schema
  (models/silver/store, one partition per `_batch_id`). A build types only the batches the
  store does not hold yet; its models then read the store rows of exactly its bronze
  snapshot's batches, minus the deliveries a later one supersedes.
#}

{# `column in ('a', 'b')`, or `false` when there is no batch (SQL has no empty IN list). #}
{% macro in_batches(batches, column='_batch_id') -%}
    {%- if batches -%}
        {{ column }} in ({% for b in batches | sort %}'{{ b }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{# The distinct `_batch_id`s of a relation (at run time only; [] while parsing). #}
{% macro distinct_batches(relation) %}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {{ return(run_query('select distinct _batch_id from ' ~ relation).columns[0].values() | list) }}
{% endmacro %}

{#
  The `_batch_id`s of the bronze snapshot this build reads: passed by the pipeline as the
  var `bronze_batches` (and recorded with the run), else read from bronze.<source_table>
  as it is pinned now (a plain `dbt run`; none while bronze does not exist yet).
#}
{% macro snapshot_batches(source_table) %}
    {%- set bronze = source('bronze', source_table) -%}
    {%- set passed = var('bronze_batches', {}) -%}
    {%- if source_table in passed -%}{{ return(passed[source_table] | list) }}{%- endif -%}
    {%- if not execute or adapter.get_relation(bronze.database, bronze.schema, bronze.identifier) is none -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(distinct_batches(bronze)) }}
{% endmacro %}

{#
  `where` condition of a store model reading `relation`: every batch on a first run (or
  with --full-refresh), then only the batches the store does not hold yet. A batch never
  changes once committed (bronze batch folders are immutable; compaction writes a new
  batch), so a stored batch is never typed again.
#}
{% macro batches_not_stored(column='_batch_id') -%}
    {%- if is_incremental() -%}
        not ({{ in_batches(distinct_batches(this), column) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#
  A store model: bronze.<source_table> rows of the batches not stored yet, typed and
  decoded as the mapping says. Not deduplicated: which delivery of a key wins depends on
  the whole snapshot, so each build decides it (stg_superseded / latest_deliveries).
  `keep_repeated` (source name prefixes) keeps only those numbered columns: a wide
  table's line groups need not be typed, written and read back when another store
  unpivots them from bronze.
#}
{% macro stg_by_batch(source_table, keep_repeated=none) %}
{%- set m = cms_mapping(source_table) -%}
with source as (

    select * from {{ source('bronze', source_table) }}
    where {{ batches_not_stored() }}

),

typed as (

    select
        {{ cms_typed_columns(m, keep_repeated) }}
    from source

),

decoded as (

    {{ cms_lookups('typed', m.columns) }}

)

select
    *,
    -- the build that typed the row; later builds reuse it as it is
    '{{ var("build_id", "") }}' as _stored_by_build
from decoded
{% endmacro %}

{#
  The join condition of a row and a superseded delivery: the same bronze row by lineage,
  which ingestion writes on every row (so plain equality; null-safe equality cost the
  carrier view 0.9 -> 1.2 s per read at scale 1.0).
#}
{% macro same_delivery(left, right) -%}
{{ left }}._batch_id = {{ right }}._batch_id
        and {{ left }}._source_file = {{ right }}._source_file
        and {{ left }}._source_line = {{ right }}._source_line
{%- endmacro %}

{#
  The rows of the build's bronze snapshot that a later delivery of the same key
  supersedes (delivery_rank: the latest ingest wins); stg_from_mapping and
  latest_deliveries leave them out. Only keys and lineage are read, so the window over the
  whole snapshot stays narrow; the result is usually tiny.
#}
{% macro stg_superseded(source_table) %}
{%- set m = cms_mapping(source_table) -%}
select _batch_id, _source_file, _source_line
from (

    select
        _batch_id,
        _source_file,
        _source_line,
        {{ delivery_rank(m) }} as _delivery_rank
    from {{ source('bronze', source_table) }}

) as deliveries
where _delivery_rank > 1
{% endmacro %}

{#
  Rows of a store model for exactly this build's bronze snapshot (batches named here, so
  batches stored later stay invisible to it), minus the superseded deliveries: the latest
  delivery of every key. Built as a view: a published view on it keeps reading the same
  rows while later builds add batches to the store.
#}
{% macro latest_deliveries(source_table, store_model, columns=none) %}
with stored as (

    select * from {{ ref(store_model) }}
    where {{ in_batches(snapshot_batches(source_table)) }}

),

superseded as (

    select * from {{ ref('stg_' ~ source_table ~ '_superseded') }}

),

latest as (

    select stored.*
    from stored
    left anti join superseded
        on {{ same_delivery('stored', 'superseded') }}

)

select {{ (columns or ['*']) | join(', ') }} from latest
{% endmacro %}
