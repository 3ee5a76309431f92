-- One row per drug event: typed columns of config/mappings/prescription_drug_events.yaml, numbered codes moved to the unpivots.
-- A view: the typing is stored per bronze batch (models/silver/store), so a build adds only new batches.
{{ config(materialized='view') }}
with staged as (

    select * from {{ ref('stg_prescription_drug_events') }}

)

select
    {{ mapped_columns('prescription_drug_events') }},
    _source_file,
    _source_line,
    _batch_id
from staged
