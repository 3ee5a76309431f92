"""Clinical vocabularies from maintained packages, written as dbt seeds.

Each table is a pure function of an installed package (package -> rows); `build_seeds`
writes them as dbt_project/seeds/vocab_*.csv and `stale_seeds` tells which committed
seeds no longer match the installed packages. Refresh with `cms-pipeline vocab build`.
"""
