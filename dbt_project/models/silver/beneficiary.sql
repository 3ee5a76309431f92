-- One row per beneficiary and summary-file year: typed, decoded, with age and death facts.
with beneficiaries as (

    select * from {{ ref('stg_beneficiary_summary') }}

),

year_bounds as (

    select
        *,
        make_date(beneficiary_year, 12, 31) as year_end_date
    from beneficiaries

),

final as (

    select
        {{ mapped_columns('beneficiary_summary') }},
        -- age on the last day of the year, or on the day of death when earlier
        cast(floor(months_between(
            least(year_end_date, coalesce(death_date, year_end_date)), birth_date
        ) / 12) as int) as age,
        death_date is not null and year(death_date) = beneficiary_year as is_died_in_year,
        death_date is null or death_date > year_end_date as is_alive_at_year_end,
        {%- for column, code in chronic_condition_columns() %}
        cast(coalesce({{ column }}, false) as int){{ " +" if not loop.last else " as chronic_condition_count," }}
        {%- endfor %}
        _source_file,
        _source_line,
        _batch_id
    from year_bounds

)

select * from final
