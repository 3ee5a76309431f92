-- Claims that no beneficiary-year holds, with their counts and amounts per claim type, year
-- and reason, so no claim money leaves gold without a trace: fct_claims = the claims of
-- beneficiary_year + these (tests/reconcile_claims_placed_unplaced).
-- Rule: a claim is placed in the beneficiary-year of its through date (fct_claims.claim_year)
-- when the summary file has a row for that beneficiary and year. Otherwise, first reason that
-- applies: no_through_date (the claim has no through date), beneficiary_without_summary (no
-- summary row in any year), year_outside_summary_years (the year has no summary file, e.g.
-- 2007), no_summary_row_for_year (the beneficiary has summary rows, not for that year).
-- On the bundled real rows (samples 1+2) no inpatient claim is left here (by start date,
-- 41 would be: they start in 2007); sample 1's partial outpatient file leaves 2 undated
-- claims (a segment 2 row only) and the claims of beneficiaries outside the summary subset
-- (soda_checks/gold/reconcile_unplaced_claims.yml warns above 1% of a claim type).
with {{ import_refs(
    claims='fct_claims',
    beneficiaries='beneficiary',
) }},

summary_beneficiaries as (

    select distinct desynpuf_id from beneficiaries

),

summary_years as (

    select distinct beneficiary_year from beneficiaries

),

unplaced_claims as (

    select
        claims.claim_type,
        claims.claim_year,
        claims.desynpuf_id,
        claims.payment_amount,
        claims.beneficiary_responsibility_amount,
        claims.primary_payer_paid_amount,
        case
            when claims.claim_year is null then 'no_through_date'
            when summary_beneficiaries.desynpuf_id is null then 'beneficiary_without_summary'
            when summary_years.beneficiary_year is null then 'year_outside_summary_years'
            else 'no_summary_row_for_year'
        end as unplaced_reason
    from claims
    left join beneficiaries
        on beneficiaries.desynpuf_id = claims.desynpuf_id
            and beneficiaries.beneficiary_year = claims.claim_year
    left join summary_beneficiaries
        on summary_beneficiaries.desynpuf_id = claims.desynpuf_id
    left join summary_years
        on summary_years.beneficiary_year = claims.claim_year
    where beneficiaries.desynpuf_id is null

),

final as (

    select
        claim_type,
        claim_year,
        unplaced_reason,
        count(*) as claim_count,
        count(distinct desynpuf_id) as beneficiary_count,
        cast(sum(payment_amount) as decimal(28, 2)) as payment_amount,
        cast(sum(beneficiary_responsibility_amount) as decimal(28, 2)) as beneficiary_responsibility_amount,
        cast(sum(primary_payer_paid_amount) as decimal(28, 2)) as primary_payer_paid_amount
    from unplaced_claims
    group by claim_type, claim_year, unplaced_reason

)

select * from final
