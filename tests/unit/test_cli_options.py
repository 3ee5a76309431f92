"""The README's promise: every command takes --lake and --json, except the ones it names
(commands that write repository files, not a lake, and servers or pass-throughs whose
output is not a result)."""

from __future__ import annotations

import typer.main

from cms_pipeline.cli import app

# command (or command group) -> the options it does not take, and why
EXEMPT = {
    "mappings": ({"--lake", "--json"}, "writes dbt files in the repository, not the lake"),
    "vocab": ({"--lake", "--json"}, "writes seed files in the repository, not the lake"),
    "dbt": ({"--json"}, "dbt prints its own output"),
    "serve": ({"--json"}, "a server: it runs until stopped"),
    "docs serve": ({"--json"}, "a server: it runs until stopped"),
    "docs generate": ({"--json"}, "dbt prints its own output"),
    "deploy": ({"--lake"}, "deployments take the lake of the profile they run under"),
    "cluster start": ({"--json"}, "prints the cluster's URLs as it starts"),
    "cluster stop": ({"--lake", "--json"}, "stops processes, touches no lake"),
}


def commands(group, path=()):
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def exempt(name: str) -> set[str]:
    for prefix, (options, _why) in EXEMPT.items():
        if name == prefix or name.startswith(prefix + " "):
            return options
    return set()


def test_every_command_takes_lake_and_json_unless_exempt():
    found = dict(commands(typer.main.get_command(app)))
    assert {"run", "ingest", "transform", "check", "train", "score"} <= set(found)
    missing = {}
    for name, command in found.items():
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        lacking = {"--lake", "--json"} - options - exempt(name)
        if lacking:
            missing[name] = sorted(lacking)
    assert missing == {}, f"commands without --lake/--json (add them, or to EXEMPT): {missing}"


def test_every_exemption_names_a_command_that_exists():
    names = set(dict(commands(typer.main.get_command(app))))
    stale = [p for p in EXEMPT if not any(n == p or n.startswith(p + " ") for n in names)]
    assert stale == []
