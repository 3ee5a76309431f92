"""`cms-pipeline vocab build|check`: clinical vocabularies (cms_pipeline/vocab) as dbt seeds."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.2 s (the vocabulary packages;
# measured 2026-12-08, 2 cores).

from __future__ import annotations

import typer

from cms_pipeline.cli.common import out
from cms_pipeline.config import PROJECT_ROOT

SEED_DIR = PROJECT_ROOT / "dbt_project" / "seeds"


def register(app: typer.Typer) -> None:
    vocab = typer.Typer(
        help="Clinical vocabularies (ICD-9-CM descriptions, CCS, comorbidity) as dbt seeds.",
        no_args_is_help=True,
    )
    app.add_typer(vocab, name="vocab")

    @vocab.command("build")
    def build_command():
        """Write dbt_project/seeds/vocab_*.csv and _vocab__seeds.yml from the installed packages."""
        from cms_pipeline.vocab.seeds import build_seeds

        for name, lines in build_seeds(SEED_DIR).items():
            out.print(f"wrote: {(SEED_DIR / name).relative_to(PROJECT_ROOT)} ({lines} lines)")

    @vocab.command("check")
    def check_command():
        """Exit 1 when a committed vocabulary seed differs from what the packages give."""
        from cms_pipeline.vocab.seeds import stale_seeds

        stale = stale_seeds(SEED_DIR)
        for name in stale:
            out.print(f"stale: {(SEED_DIR / name).relative_to(PROJECT_ROOT)}")
        if stale:
            out.print("run `cms-pipeline vocab build` and commit the files")
            raise typer.Exit(1)
        out.print("up to date")
