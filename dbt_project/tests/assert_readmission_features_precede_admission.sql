-- Leakage rule of features_readmission: the summary year of the flags is before the
-- admission year, and the last earlier discharge lies before the admission.
select admission_id, admission_date, summary_year, days_since_last_discharge
from {{ ref('features_readmission') }}
where summary_year >= year(admission_date)
    or days_since_last_discharge <= 0
    or discharge_date < admission_date
