-- One row per beneficiary: stable attributes, with state and county from the latest
-- summary year.
with {{ import_refs(beneficiaries='beneficiary') }},

latest_year as (

    select
        *,
        row_number() over (partition by desynpuf_id order by beneficiary_year desc) as recency
    from beneficiaries

),

years_covered as (

    select
        desynpuf_id,
        min(beneficiary_year) as first_summary_year,
        max(beneficiary_year) as last_summary_year,
        count(*) as summary_year_count,
        min(death_date) as death_date,
        max(cast(has_esrd as int)) = 1 as has_ever_esrd
    from beneficiaries
    group by desynpuf_id

),

final as (

    select
        latest_year.desynpuf_id,
        latest_year.birth_date,
        years_covered.death_date,
        years_covered.death_date is not null as is_deceased,
        latest_year.sex_code,
        latest_year.sex,
        latest_year.race_code,
        latest_year.race,
        latest_year.state_code,
        latest_year.state,
        latest_year.county_code,
        years_covered.has_ever_esrd,
        years_covered.first_summary_year,
        years_covered.last_summary_year,
        years_covered.summary_year_count
    from latest_year
    inner join years_covered
        on years_covered.desynpuf_id = latest_year.desynpuf_id
    where latest_year.recency = 1

)

select * from final
