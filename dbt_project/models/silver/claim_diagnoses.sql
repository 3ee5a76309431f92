-- One row per code on a claim, across claim types: the numbered code columns unpivoted
-- as config/mappings/*.yaml declare under unpivots.claim_diagnoses.
{{ union_unpivots('claim_diagnoses') }}
