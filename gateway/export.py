"""``python -m gateway.export NAME=module:factory ...``: writes the merged OpenAPI document from
in-process apps, so that no process needs to run (``make openapi``; ``--check`` for CI).

The services' app factories are named on the command line, as uvicorn is given them: the
gateway imports no service. Each factory is called without settings, in an environment cleared
of the service's own variables but for a dummy internal token, so the document does not depend
on the machine it is written on.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from gateway.openapi import DESCRIPTION, MergeReport, merge_documents
from gateway.routing import is_public, resolve

DUMMY_INTERNAL_TOKEN = "openapi-export"  # noqa: S105 - a placeholder, never used to authenticate


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def merged_document(apps: Mapping[str, FastAPI], report: MergeReport | None = None) -> dict[str, Any]:
    """The gateway's document for these service apps (``{service name: app}``)."""
    return merge_documents(
        {name: app.openapi() for name, app in apps.items()},
        owner=resolve,
        is_public=is_public,
        description=DESCRIPTION,
        report=report,
    )


def load_factory(spec: str) -> Callable[[], FastAPI]:
    module_name, _, attribute = spec.partition(":")
    factory: Callable[[], FastAPI] = getattr(importlib.import_module(module_name), attribute)
    return factory


def build_apps(factories: Mapping[str, str]) -> dict[str, FastAPI]:
    apps = {}
    for name, spec in factories.items():
        prefix = name.upper() + "_"
        for key in [k for k in os.environ if k.startswith(prefix)]:
            del os.environ[key]
        os.environ[prefix + "INTERNAL_TOKEN"] = DUMMY_INTERNAL_TOKEN
        apps[name] = load_factory(spec)()
    return apps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.export", description=__doc__)
    parser.add_argument("apps", nargs="+", metavar="NAME=module:factory")
    parser.add_argument("--output", type=Path, default=Path("openapi.json"))
    parser.add_argument("--check", action="store_true", help="fail if --output differs, write nothing")
    args = parser.parse_args(argv)
    factories = dict(item.split("=", 1) for item in args.apps)
    report = MergeReport()
    text = render(merged_document(build_apps(factories), report))
    for problem in report.unrouted:
        print(f"warning: published but not routed by the gateway: {problem}", file=sys.stderr)
    for problem in report.duplicate_paths:
        print(f"warning: path published twice: {problem}", file=sys.stderr)
    for problem in report.renamed_operations:
        print(f"warning: operation id clash (name it in OPERATION_IDS): {problem}", file=sys.stderr)
    for problem in report.unnamed:
        print(f"warning: no name for people (see SCHEMA_NAMES, ANSWER_NAMES): {problem}", file=sys.stderr)
    for problem in report.broken_links:
        print(f"warning: a link to an operation that is not published: {problem}", file=sys.stderr)
    for service in report.drifted_problems:
        print(f"warning: {service} publishes a Problem that is not kit's", file=sys.stderr)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{args.output} (committed)",
                tofile=f"{args.output} (from the code)",
                n=1,
            )
            sys.stderr.writelines(list(diff)[:200])
            print(f"\n{args.output} is stale: run `make openapi` and commit it.", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date.")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
