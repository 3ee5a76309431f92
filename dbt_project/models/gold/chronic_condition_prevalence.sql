-- Share of beneficiaries with each chronic condition, by summary year.
{%- set conditions = chronic_condition_columns() %}
with {{ import_refs(
    beneficiaries='beneficiary',
    codebook='codebook_chronic_condition',
) }},

condition_rows as (

    select
        beneficiary_year,
        condition_code,
        coalesce(has_condition, false) as has_condition
    from beneficiaries
        lateral view stack(
            {{ conditions | length }}
            {%- for column, code in conditions %},
            '{{ code }}',
            {{ column }}{% endfor %}
        ) flags as condition_code, has_condition

),

prevalence as (

    select
        beneficiary_year,
        condition_code,
        count(*) as beneficiary_count,
        count_if(has_condition) as with_condition_count
    from condition_rows
    group by beneficiary_year, condition_code

),

final as (

    select
        prevalence.beneficiary_year,
        prevalence.condition_code,
        codebook.label as condition,
        prevalence.beneficiary_count,
        prevalence.with_condition_count,
        cast(prevalence.with_condition_count / prevalence.beneficiary_count as double) as prevalence
    from prevalence
    left join codebook
        on codebook.code = prevalence.condition_code

)

select * from final
