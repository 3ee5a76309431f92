-- One row per beneficiary-year (gold.beneficiary_year): Charlson and Elixhauser comorbidity
-- from the year's claim diagnoses, with the Quan (2005) ICD-9-CM coding algorithms and the
-- weights pycomorb scores them with (seeds vocab_comorbidity_*, `cms-pipeline vocab build`).
-- Rules:
--   * diagnoses: every coded position of inpatient, outpatient and carrier claims
--     (silver.claim_diagnoses), not the admitting diagnosis (position 0: a reason for the
--     stay, not a confirmed condition);
--   * year: a claim's diagnoses count in its year (fct_claims.claim_year, the through-date
--     rule of beneficiary_year), so claims with no summary row that year score nothing;
--   * a category counts once per beneficiary-year however many codes flag it; the milder
--     category of a pair in vocab_comorbidity_exclusion does not count when the severe one
--     does (pycomorb's rule);
--   * index = sum of the category weights of the scheme in vars comorbidity_charlson_weights
--     (default charlson, Charlson 1987) and comorbidity_elixhauser_weights (default
--     van_walraven); no age points.
{%- set schemes = {
    'charlson': var('comorbidity_charlson_weights', 'charlson'),
    'elixhauser': var('comorbidity_elixhauser_weights', 'van_walraven'),
} %}
with {{ import_refs(
    beneficiary_years='beneficiary_year',
    claims='fct_claims',
    code_categories='vocab_comorbidity_icd9_category',
    weights='vocab_comorbidity_weight',
    exclusions='vocab_comorbidity_exclusion',
) }},

diagnoses as (

    select
        claim_type,
        claim_id,
        desynpuf_id,
        icd9_dgns_cd
    from {{ ref('claim_diagnoses') }}
    where diagnosis_position > 0

),

flagged as (

    select distinct
        diagnoses.desynpuf_id,
        claims.claim_year,
        code_categories.comorbidity_index,
        code_categories.category
    from diagnoses
    inner join claims
        on claims.claim_key = concat(diagnoses.claim_type, ':', diagnoses.claim_id)
    inner join code_categories
        on code_categories.icd9_dx_code = diagnoses.icd9_dgns_cd

),

counted as (

    -- a milder category drops out when its severe one is flagged the same year
    select flagged.*
    from flagged
    left join exclusions
        on exclusions.comorbidity_index = flagged.comorbidity_index
            and exclusions.mild_category = flagged.category
    left join flagged as severe
        on severe.desynpuf_id = flagged.desynpuf_id
            and severe.claim_year = flagged.claim_year
            and severe.comorbidity_index = flagged.comorbidity_index
            and severe.category = exclusions.severe_category
    where severe.category is null

),

weighted as (

    select
        counted.*,
        coalesce(weights.weight, 0) as weight
    from counted
    left join weights
        on weights.comorbidity_index = counted.comorbidity_index
            and weights.category = counted.category
            and weights.weight_scheme = case counted.comorbidity_index
                {%- for index, scheme in schemes.items() %}
                when '{{ index }}' then '{{ scheme }}'
                {%- endfor %}
            end

),

per_year as (

    select
        desynpuf_id,
        claim_year,
    {%- for index in schemes %}
    count_if(comorbidity_index = '{{ index }}') as {{ index }}_category_count,
    sum(case when comorbidity_index = '{{ index }}' then weight else 0 end) as {{ index }}_index,
    concat_ws('; ', sort_array(collect_list(
        case when comorbidity_index = '{{ index }}' then category end
        ))) as {{ index }}_categories{{ "," if not loop.last }}
    {%- endfor %}
    from weighted
    group by desynpuf_id, claim_year

)

select
    beneficiary_years.desynpuf_id,
    beneficiary_years.beneficiary_year,
{%- for index, scheme in schemes.items() %}
cast(coalesce(per_year.{{ index }}_category_count, 0) as int) as {{ index }}_category_count,
cast(coalesce(per_year.{{ index }}_index, 0) as int) as {{ index }}_index,
'{{ scheme }}' as {{ index }}_weight_scheme,
nullif(per_year.{{ index }}_categories, '') as {{ index }}_categories{{ "," if not loop.last }}
{%- endfor %}
from beneficiary_years
left join per_year
    on per_year.desynpuf_id = beneficiary_years.desynpuf_id
        and per_year.claim_year = beneficiary_years.beneficiary_year
