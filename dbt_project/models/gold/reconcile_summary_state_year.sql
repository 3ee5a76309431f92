-- The summary file against the claims, per state, year, setting and measure: the sums of
-- reconcile_summary_beneficiary_year, the money each side holds beyond the other (summed per
-- beneficiary-year, so over- and under-counts do not cancel), and the shares that match:
-- matched_share = beneficiary-years whose claims equal the summary to the cent, over those
-- with money on either side; summary_share_explained = the part of the summary's amount
-- that the claims of the same beneficiary-years cover. Soda warns, both ways, when a year
-- leaves the range the bundled real samples show (soda_checks/gold/reconcile_summary_state_year.yml).
with {{ import_refs(beneficiary_years='reconcile_summary_beneficiary_year') }},

totals as (

    select
        state_code,
        beneficiary_year,
        setting,
        measure,
        count(*) as beneficiary_year_count,
        count_if(is_matched) as matched_count,
        cast(sum(summary_amount) as decimal(28, 2)) as summary_amount,
        cast(sum(claims_amount) as decimal(28, 2)) as claims_amount,
        cast(sum(greatest(difference_amount, 0)) as decimal(28, 2)) as claims_over_summary_amount,
        cast(sum(greatest(-difference_amount, 0)) as decimal(28, 2)) as summary_over_claims_amount
    from beneficiary_years
    group by state_code, beneficiary_year, setting, measure

),

final as (

    select
        state_code,
        beneficiary_year,
        setting,
        measure,
        beneficiary_year_count,
        matched_count,
        cast(matched_count / beneficiary_year_count as decimal(9, 6)) as matched_share,
        summary_amount,
        claims_amount,
        claims_amount - summary_amount as difference_amount,
        claims_over_summary_amount,
        summary_over_claims_amount,
        cast(
            (summary_amount - summary_over_claims_amount) / nullif(summary_amount, 0)
            as decimal(9, 6)
        ) as summary_share_explained
    from totals

)

select * from final
