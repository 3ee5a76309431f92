-- The top {{ var('top_n_codes') }} principal diagnoses per claim type by total claim payment,
-- each claim's payment counted once under its principal code (macros/gold/top_codes_by_cost),
-- with the code's CMS description (seed vocab_icd9_dx_description, `cms-pipeline vocab build`).
{{ top_codes_by_cost('principal_icd9_dgns_cd', 'icd9_dgns_cd', 'vocab_icd9_dx_description', 'icd9_dx_code') }}
