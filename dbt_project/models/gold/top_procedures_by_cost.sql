-- The top {{ var('top_n_codes') }} principal procedures per claim type by total claim payment,
-- each claim's payment counted once under its principal code (macros/gold/top_codes_by_cost),
-- with the code's CMS description (seed vocab_icd9_procedure_description,
-- `cms-pipeline vocab build`).
{{ top_codes_by_cost(
    'principal_icd9_prcdr_cd', 'icd9_prcdr_cd',
    'vocab_icd9_procedure_description', 'icd9_procedure_code'
) }}
