-- Reconciliation to the cent, both ways, per claim type, year and amount column: bronze
-- (every amount read from its raw text) = silver. Failing rows: the (claim type, year,
-- amount) whose totals differ, with both totals.
-- Independent of the models' deduplication: the latest delivery of each bronze key (latest
-- ingest, then batch, then line, the rule of the mappings) is recomputed here with a
-- max_by per key (a hash aggregate; no sort over every row), not read from stg_*_superseded.
-- Year: the year of the row's own through date (CLM_THRU_DT; SRVC_DT for drug events),
-- null when it has none (later segments of a split claim); silver's claim_end_date /
-- service_date on the silver side. Carrier amounts: bronze's 13 line groups summed, against
-- silver's claim totals and against its unpivoted lines (carrier_lines).
{%- set sources = [
    {'claim_type': 'inpatient', 'table': 'inpatient_claims', 'key': ['CLM_ID', 'SEGMENT'], 'date': 'CLM_THRU_DT', 'silver_date': 'claim_end_date',
     'amounts': {'CLM_PMT_AMT': 'payment_amount', 'NCH_PRMRY_PYR_CLM_PD_AMT': 'primary_payer_paid_amount', 'NCH_BENE_IP_DDCTBL_AMT': 'deductible_amount',
                 'NCH_BENE_PTA_COINSRNC_LBLTY_AM': 'coinsurance_amount', 'NCH_BENE_BLOOD_DDCTBL_LBLTY_AM': 'blood_deductible_amount', 'CLM_PASS_THRU_PER_DIEM_AMT': 'pass_thru_per_diem_amount'}},
    {'claim_type': 'outpatient', 'table': 'outpatient_claims', 'key': ['CLM_ID', 'SEGMENT'], 'date': 'CLM_THRU_DT', 'silver_date': 'claim_end_date',
     'amounts': {'CLM_PMT_AMT': 'payment_amount', 'NCH_PRMRY_PYR_CLM_PD_AMT': 'primary_payer_paid_amount', 'NCH_BENE_PTB_DDCTBL_AMT': 'deductible_amount',
                 'NCH_BENE_PTB_COINSRNC_AMT': 'coinsurance_amount', 'NCH_BENE_BLOOD_DDCTBL_LBLTY_AM': 'blood_deductible_amount'}},
    {'claim_type': 'carrier', 'table': 'carrier_claims', 'key': ['CLM_ID'], 'date': 'CLM_THRU_DT', 'silver_date': 'claim_end_date',
     'amounts': {'LINE_NCH_PMT_AMT': 'payment_amount', 'LINE_BENE_PRMRY_PYR_PD_AMT': 'primary_payer_paid_amount', 'LINE_BENE_PTB_DDCTBL_AMT': 'deductible_amount',
                 'LINE_COINSRNC_AMT': 'coinsurance_amount', 'LINE_ALOWD_CHRG_AMT': 'allowed_charge_amount'}},
    {'claim_type': 'pde', 'table': 'prescription_drug_events', 'key': ['PDE_ID'], 'date': 'SRVC_DT', 'silver_date': 'service_date',
     'amounts': {'TOT_RX_CST_AMT': 'total_rx_cost_amount', 'PTNT_PAY_AMT': 'patient_pay_amount'}},
] %}
with
{%- for s in sources %}

bronze_{{ s.claim_type }}_latest as (

    {#- the latest delivery's amounts and date, per key #}
    select
        max_by(struct(
            {{ s.date }} as claim_date,
            {%- for column in s.amounts %}
            {%- if s.claim_type == 'carrier' %}
            {%- for n in range(1, 14) %}
            {{ "+ " if not loop.first }}coalesce({{ bronze_amount(column ~ '_' ~ n) }}, 0)
            {%- endfor %} as {{ s.amounts[column] }}{{ "," if not loop.last }}
            {%- else %}
            {{ bronze_amount(column) }} as {{ s.amounts[column] }}{{ "," if not loop.last }}
            {%- endif %}
            {%- endfor %}
        ), struct(_ingested_at, _batch_id, _source_line)) as latest
    from {{ source('bronze', s.table) }}
    group by {{ s.key | join(', ') }}

),

bronze_{{ s.claim_type }} as (

    select
        '{{ s.claim_type }}' as claim_type,
        cast(substr(latest.claim_date, 1, 4) as int) as claim_year,
        stack(
            {{ s.amounts | length }},
            {%- for column, name in s.amounts.items() %}
            '{{ name }}', coalesce(latest.{{ name }}, 0){{ "," if not loop.last }}
            {%- endfor %}
        ) as (amount_name, amount)
    from bronze_{{ s.claim_type }}_latest

),

silver_{{ s.claim_type }} as (

    select
        '{{ s.claim_type }}' as claim_type,
        year({{ s.silver_date }}) as claim_year,
        stack(
            {{ s.amounts | length }},
            {%- for column, name in s.amounts.items() %}
            '{{ name }}', cast(coalesce({{ name }}, 0) as decimal(18, 2)){{ "," if not loop.last }}
            {%- endfor %}
        ) as (amount_name, amount)
    from {{ ref(s.table) }}

),
{%- endfor %}

silver_carrier_lines as (

    select
        'carrier' as claim_type,
        year(claims.claim_end_date) as claim_year,
        stack(
            5,
            'payment_amount', coalesce(lines.line_payment_amount, 0),
            'primary_payer_paid_amount', coalesce(lines.line_primary_payer_paid_amount, 0),
            'deductible_amount', coalesce(lines.line_deductible_amount, 0),
            'coinsurance_amount', coalesce(lines.line_coinsurance_amount, 0),
            'allowed_charge_amount', coalesce(lines.line_allowed_charge_amount, 0)
        ) as (amount_name, amount)
    from {{ ref('carrier_lines') }} as lines
    inner join {{ ref('carrier_claims') }} as claims
        on claims.claim_id = lines.claim_id

),

bronze_totals as (
    {%- for s in sources %}
    select
        claim_type,
        claim_year,
        amount_name,
        sum(amount) as amount
    from bronze_{{ s.claim_type }}
    group by claim_type, claim_year, amount_name
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

silver_totals as (
    {%- for s in sources %}
    select
        claim_type,
        claim_year,
        amount_name,
        sum(amount) as amount
    from silver_{{ s.claim_type }}
    group by claim_type, claim_year, amount_name
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

silver_line_totals as (

    select
        claim_type,
        claim_year,
        amount_name,
        sum(amount) as amount
    from silver_carrier_lines
    group by claim_type, claim_year, amount_name

),

compared as (

    select
        coalesce(bronze_totals.claim_type, silver_totals.claim_type) as claim_type,
        coalesce(bronze_totals.claim_year, silver_totals.claim_year) as claim_year,
        coalesce(bronze_totals.amount_name, silver_totals.amount_name) as amount_name,
        coalesce(bronze_totals.amount, 0) as bronze_amount,
        coalesce(silver_totals.amount, 0) as silver_amount,
        silver_line_totals.amount as silver_line_amount
    from bronze_totals
    full outer join silver_totals
        on silver_totals.claim_type = bronze_totals.claim_type
            and silver_totals.claim_year <=> bronze_totals.claim_year
            and silver_totals.amount_name = bronze_totals.amount_name
    left join silver_line_totals
        on silver_line_totals.claim_type = coalesce(bronze_totals.claim_type, silver_totals.claim_type)
            and silver_line_totals.claim_year <=> coalesce(bronze_totals.claim_year, silver_totals.claim_year)
            and silver_line_totals.amount_name = coalesce(bronze_totals.amount_name, silver_totals.amount_name)

)

select * from compared
where bronze_amount <> silver_amount
    or (claim_type = 'carrier' and bronze_amount <> coalesce(silver_line_amount, 0))
