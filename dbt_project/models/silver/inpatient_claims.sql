-- One row per claim segment: typed columns of config/mappings/inpatient_claims.yaml, numbered codes moved to the unpivots.
with staged as (

    select * from {{ ref('stg_inpatient_claims') }}

)

select
    {{ mapped_columns('inpatient_claims') }},
    _source_file,
    _source_line,
    _batch_id
from staged
