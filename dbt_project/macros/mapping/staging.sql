{#
  Staging steps compiled from a mapping: the per-batch store (macros/incremental) types and
  decodes with these; the staging models that read bronze are plain SQL written by
  `cms-pipeline mappings compile` (cms_pipeline/mapping_sql.py) with the same expressions.
#}

{% macro delivery_rank(m) -%}
row_number() over (
            partition by {{ m.key_source | join(', ') }}
            order by _ingested_at desc, _batch_id desc, _source_line desc
        )
{%- endmacro %}

{# Every mapped column cast and decoded, the numbered columns typed (only those whose source
   name, less its number, is in `keep_repeated` when that is given), then the lineage. #}
{% macro cms_typed_columns(m, keep_repeated=none) -%}
        {%- for c in m.columns %}
        {{ cms_cast(c.source, c.type, c.decode) }} as {{ c.name }},
        {%- endfor %}
        {%- for c in m.repeated if keep_repeated is none or c.source.rstrip('0123456789') in keep_repeated %}
        {{ cms_cast(c.source, c.type) }} as {{ c.name }},
        {%- endfor %}
        _source_file,
        _source_line,
        _batch_id
{%- endmacro %}

{# `select <relation>.*, <label columns>` with a left join per column that has a lookup. #}
{% macro cms_lookups(relation, columns) %}
    select
        {{ relation }}.*
        {%- for c in columns if c.lookup %},
        {{ c.lookup.name }}_codebook.label as {{ c.lookup.name }}
        {%- endfor %}
    from {{ relation }}
    {%- for c in columns if c.lookup %}
    left join {{ ref(c.lookup.seed) }} as {{ c.lookup.name }}_codebook
        on {{ c.lookup.name }}_codebook.code = {{ relation }}.{{ c.name }}
    {%- endfor %}
{% endmacro %}
