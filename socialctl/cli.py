"""The ``socialctl`` commands: Typer for the arguments, rich for what people read."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from socialctl import config as configuration
from socialctl import people
from socialctl.api import Api, ApiError
from socialctl.config import Config
from socialctl.export import Downloaded
from socialctl.export import export as collect_export

T = TypeVar("T")
MAX_FAILURES_SHOWN = 50

app = typer.Typer(
    name="socialctl",
    help="Script the govsocial API: provisioning, groups, announcements, webhooks, exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Accounts, provisioned through SCIM.", no_args_is_help=True)
groups_app = typer.Typer(help="Purpose groups.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints (administrators and clients with the webhooks scope).")
app.add_typer(accounts_app, name="accounts")
app.add_typer(groups_app, name="groups")
app.add_typer(webhooks_app, name="webhooks", no_args_is_help=True)

out = Console(highlight=False, soft_wrap=True)  # lines stay whole in pipes and logs
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of a summary.")]


def _fail(*lines: str, code: int = 1) -> typer.Exit:
    for line in lines:
        err.print(Text(line, style="red"))
    return typer.Exit(code)


def run(work: Coroutine[Any, Any, T]) -> T:
    """Runs one command's work; an API error is printed (title and detail) and exits 1."""
    try:
        return asyncio.run(work)
    except ApiError as exc:
        raise _fail(*(["Error: " + exc.lines()[0], *exc.lines()[1:]])) from None


def _persist(config: Config) -> None:
    configuration.save(config)


def api(config: Config | None = None) -> Api:
    return Api(config or configuration.load(), on_renew=_persist)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command()
def login(
    url: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_URL", help="The gateway, e.g. https://social.agency.example"),
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="An integrator client (client_credentials).")] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_CLIENT_SECRET", help="Asked for when not given.", show_default=False),
    ] = None,
    scope: Annotated[str | None, typer.Option(help="Scopes to ask for, e.g. 'scim webhooks'.")] = None,
    user: Annotated[str | None, typer.Option(help="A person's email (password grant).")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_PASSWORD", help="Asked for when not given.", show_default=False),
    ] = None,
    persona: Annotated[
        Literal["professional", "personal"], typer.Option(help="Which face to sign in as.")
    ] = ("professional"),
) -> None:
    """Sign in as an integrator client or as a person.

    The token is kept in the configuration file (mode 0600) with what renews it: the client
    secret, or the person's refresh token (never the password)."""
    if (client_id is None) == (user is None):
        raise _fail("Give either --client-id (an integrator client) or --user (a person).", code=2)
    config = Config(url=(url or configuration.load().url).rstrip("/"))
    if client_id is not None:
        secret = client_secret or typer.prompt("Client secret", hide_input=True)
        config.client_id, config.client_secret, config.scope = client_id, secret, scope
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if scope:
            grant["scope"] = scope
    else:
        assert user is not None
        secret = password or typer.prompt("Password", hide_input=True)
        config.username, config.persona = user, persona
        grant = {"grant_type": "password", "username": user, "password": secret, "persona": persona}

    async def sign_in() -> None:
        async with api(config) as client:
            client.remember(await client.token(grant))

    run(sign_in())
    path = configuration.save(config)
    out.print(Text(f"Signed in to {config.url} as {config.who()}."))
    out.print(Text(f"Credentials saved in {path} (mode 0600)."), style="dim")


@app.command()
def logout() -> None:
    """Revoke the refresh token, if any, and delete the configuration file."""
    config = configuration.load()
    if config.refresh_token:

        async def revoke() -> None:
            async with api(config) as client:
                await client.client.post("/api/v1/auth/revoke", data={"token": config.refresh_token or ""})

        run(revoke())
    removed = configuration.remove()
    out.print("Signed out." if removed else "Not signed in.")


@app.command()
def whoami() -> None:
    """Who the saved credentials speak for, and where."""
    config = configuration.load()
    if not config.signed_in:
        raise _fail("Not signed in: run `socialctl login` first.")
    out.print(Text(f"{config.who()} at {config.url}"))


@accounts_app.command("import")
def import_accounts(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A CSV file.")],
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")] = 8,
    errors_csv: Annotated[
        Path | None,
        typer.Option("--errors-csv", help="Write every failed row (line, user_name, error) here."),
    ] = None,
) -> None:
    """Provision people from a CSV file through SCIM (a client with the scim scope).

    The header names the columns: user_name (required), email, given_name, family_name,
    display_name, title, department, external_id, employee_number, active. A new user_name is
    created; a known one is replaced with the row unless it holds its values already. Bad
    rows are reported with their line number and never stop the others; the exit status is 1
    if any row failed."""
    try:
        rows = people.read_rows(people.decode(path.read_bytes()))
    except people.CsvError as exc:
        raise _fail(f"{path}: {exc}") from None
    started = time.monotonic()

    async def work() -> people.Summary:
        async with api() as client:
            await people.check_access(client)
            progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err,
            )
            with progress:
                task = progress.add_task("Provisioning", total=len(rows), failed=0)
                failed = 0

                def advance(outcome: people.Outcome) -> None:
                    nonlocal failed
                    failed += outcome.status == "failed"
                    progress.update(task, advance=1, failed=failed)

                return await people.provision(client, rows, concurrency=concurrency, advance=advance)

    summary = run(work())
    elapsed = time.monotonic() - started
    failures = summary.failures
    if failures:
        table = Table("line", "user_name", "error", title="Failed rows", title_justify="left")
        for failure in failures[:MAX_FAILURES_SHOWN]:
            table.add_row(str(failure.line), failure.user_name, Text(failure.detail or ""))
        out.print(table)
        if len(failures) > MAX_FAILURES_SHOWN and errors_csv is None:
            out.print(f"… and {len(failures) - MAX_FAILURES_SHOWN} more; --errors-csv FILE writes them all.")
    if errors_csv is not None:
        with errors_csv.open("w", newline="") as stream:
            people.write_failures(summary, stream)
    out.print(
        f"{len(summary.outcomes)} rows in {elapsed:.1f} s: "
        f"{summary.count('created')} created, {summary.count('updated')} updated, "
        f"{summary.count('unchanged')} unchanged, {len(failures)} failed."
    )
    if failures:
        raise typer.Exit(1)


@groups_app.command("create")
def create_group(
    handle: Annotated[str, typer.Argument(help="The group's handle, e.g. cloud_move.")],
    name: Annotated[str, typer.Option(help="The group's name.")],
    purpose: Annotated[str, typer.Option(help="Why the group exists, as a sentence.")],
    description: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for several.")] = None,
    visibility: Annotated[Literal["open", "closed", "secret"], typer.Option()] = "open",
    as_json: JsonFlag = False,
) -> None:
    """Create a purpose group in the signed-in persona's context; the persona owns it."""
    body: dict[str, Any] = {"name": name, "handle": handle, "purpose": purpose, "visibility": visibility}
    if description:
        body["description"] = description
    if tag:
        body["tags"] = tag

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call("POST", "/api/v1/groups", json=body)
            return created

    group = run(work())
    if as_json:
        _print_json(group)
    else:
        out.print(Text(f"Created group {group['handle']} ({group['context']}): {group['id']}"))


def _when(value: str) -> str:
    """An ISO 8601 time, or a duration from now such as 7d or 12h."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if value[:-1].isdigit() and value[-1:] in units:
        return (datetime.now(UTC) + timedelta(**{units[value[-1]]: int(value[:-1])})).isoformat()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("give an ISO 8601 time or a duration such as 7d") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


@app.command()
def post(
    text: Annotated[str, typer.Argument(help="The post's text; - reads it from standard input.")],
    group: Annotated[str | None, typer.Option(help="Post to this group (its id).")] = None,
    audience: Annotated[Literal["organisation", "followers", "group"] | None, typer.Option()] = None,
    announcement: Annotated[
        bool, typer.Option("--announcement", help="An announcement to the whole organisation, pinned.")
    ] = False,
    pinned_until: Annotated[
        str, typer.Option(help="With --announcement: until when it leads timelines (ISO time or 7d).")
    ] = "7d",
    as_json: JsonFlag = False,
) -> None:
    """Publish a post as the signed-in persona.

    With --announcement (administrators and the communications role): an organisation-wide
    post pinned until --pinned-until."""
    body: dict[str, Any] = {"body": sys.stdin.read() if text == "-" else text}
    if announcement:
        if group is not None:
            raise _fail("An announcement goes to the whole organisation, not to a group.", code=2)
        body["audience"] = "organisation"
        body["pinned_until"] = _when(pinned_until)
    elif group is not None:
        body["audience"], body["group_id"] = "group", group
    elif audience is not None:
        body["audience"] = audience

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call("POST", "/api/v1/posts", json=body)
            return created

    created = run(work())
    if as_json:
        _print_json(created)
    else:
        out.print(Text(f"Posted {created['id']} ({created.get('audience')})"))


@webhooks_app.command("add")
def add_webhook(
    url: Annotated[str, typer.Argument(help="The https endpoint that receives events.")],
    event: Annotated[
        list[str], typer.Option(help="An event type or pattern (post.created, group.*, *); repeat.")
    ],
    context: Annotated[
        list[str] | None,
        typer.Option(help="professional (default) or personal (administrators only); repeat."),
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="Write the signing secret (whsec_…) to this file, mode 0600.")
    ] = None,
    show_secret: Annotated[
        bool, typer.Option("--show-secret", help="Print the signing secret instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register a webhook endpoint.

    The API shows its signing secret once: save it with --secret-file, or print it with
    --show-secret."""
    if secret_file is None and not show_secret:
        raise _fail("The signing secret is shown once: give --secret-file PATH or --show-secret.", code=2)
    body: dict[str, Any] = {"url": url, "event_types": event}
    if context:
        body["contexts"] = context
    if description:
        body["description"] = description

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call("POST", "/api/v1/webhooks", json=body)
            return created

    created = run(work())
    secret = str(created.pop("secret", ""))
    if secret_file is not None:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        os.chmod(secret_file, 0o600)
    if as_json:
        _print_json({**created, "secret": secret} if show_secret else created)
        return
    out.print(
        Text(f"Registered webhook {created['id']} for {', '.join(created['event_types'])} → {created['url']}")
    )
    if secret_file is not None:
        out.print(Text(f"Signing secret written to {secret_file} (mode 0600)."), style="dim")
    if show_secret:
        out.print(Text(f"Signing secret (shown once): {secret}"))


@webhooks_app.command("list")
def list_webhooks(as_json: JsonFlag = False) -> None:
    """Every webhook endpoint the signed-in client or administrator can see."""

    async def work() -> list[dict[str, Any]]:
        async with api() as client:
            return await client.collect("/api/v1/webhooks")

    endpoints = run(work())
    if as_json:
        _print_json(endpoints)
        return
    if not endpoints:
        out.print("No webhook endpoints.")
        return
    table = Table("id", "url", "events", "contexts", "active")
    for endpoint in endpoints:
        table.add_row(
            endpoint["id"],
            Text(endpoint["url"]),
            Text(", ".join(endpoint["event_types"])),
            ", ".join(endpoint["contexts"]),
            "yes" if endpoint["active"] else "no",
        )
    out.print(table)


@webhooks_app.command("test")
def send_test_event(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the delivery's outcome; 0 does not wait.")
    ] = 0,
) -> None:
    """Send a webhook.test event to an endpoint, and optionally wait for its delivery."""

    async def work() -> tuple[str, dict[str, Any] | None]:
        async with api() as client:
            queued = await client.call("POST", f"/api/v1/webhooks/{webhook_id}/test")
            event_id = str(queued["event_id"])
            deadline = time.monotonic() + wait
            delivery = None
            while wait > 0:
                page = await client.call(
                    "GET", f"/api/v1/webhooks/{webhook_id}/deliveries", params={"limit": 20}
                )
                delivery = next((d for d in page["items"] if d["event_id"] == event_id), None)
                if (delivery and delivery["status"] != "pending") or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            return event_id, delivery

    event_id, delivery = run(work())
    out.print(f"Queued webhook.test event {event_id}.")
    if delivery is not None:
        code = delivery.get("last_status_code")
        detail = (
            f" (HTTP {code})"
            if code
            else (f" ({delivery['last_error']})" if delivery.get("last_error") else "")
        )
        out.print(Text(f"Delivery {delivery['id']}: {delivery['status']}{detail}"))
        if delivery["status"] == "failed":
            raise typer.Exit(1)


@app.command("export")
def export_data(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write the package (a zip) to this file, mode 0600."
        ),
    ],
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the export to be ready before giving up.")
    ] = 600,
    poll: Annotated[float, typer.Option(min=0.01, help="Seconds between two looks at its progress.")] = 2,
) -> None:
    """Export the signed-in persona's own data (the right of access) as a zip.

    The records service makes the package: every version of your posts, your comments,
    reactions, memberships, notifications and profile, as JSON Lines and CSV files with a
    manifest of their SHA-256 digests; nothing of other people, whose ids are replaced by
    pseudonyms. Signed in as your professional persona, both of your personas are in it; as
    your personal persona, that one alone. The command waits for the package (--timeout),
    then downloads it and checks its digest."""

    async def work() -> Downloaded:
        async with api() as client:
            with err.status("Exporting…") as status:

                def step(export: dict[str, Any]) -> None:
                    status.update(f"Exporting: {export.get('status')}, {export.get('percent', 0)}%…")

                return await collect_export(client, output, within=timeout, poll=poll, step=step)

    done = run(work())
    personas = ", ".join(str(p) for p in done.export.get("personas", []))
    err.print(Text(f"Exported {personas} to {output}: {done.size} bytes, SHA-256 {done.sha256}."))


if __name__ == "__main__":
    app()
