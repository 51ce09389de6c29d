"""The ``socialctl`` commands: Typer for the arguments, rich for what people read."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Coroutine, Iterable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
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

from socialctl import codeflow, people
from socialctl import config as configuration
from socialctl.api import Api, ApiError
from socialctl.config import Config
from socialctl.export import Downloaded
from socialctl.export import export as collect_export

T = TypeVar("T")
MAX_FAILURES_SHOWN = 50

app = typer.Typer(
    name="socialctl",
    help="Script the govsocial API: sign-in, apps, clients, provisioning, groups, announcements, "
    "webhooks, exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Accounts, provisioned through SCIM.", no_args_is_help=True)
groups_app = typer.Typer(help="Purpose groups.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints (administrators and clients with the webhooks scope).")
apps_app = typer.Typer(help="Apps that sign people in with the code flow (administrators).")
clients_app = typer.Typer(help="Integrator clients that sign in with their own secret (administrators).")
app.add_typer(apps_app, name="apps", no_args_is_help=True)
app.add_typer(clients_app, name="clients", no_args_is_help=True)
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


def _id_column(table: Table, header: str, ids: Iterable[object]) -> None:
    """A column of ids, which the next command takes: never shortened or wrapped, whatever the
    terminal's width (the other columns fold instead)."""
    table.add_column(header, no_wrap=True, min_width=max((len(str(i)) for i in ids), default=len(header)))


def _moment(value: str | None) -> str:
    """An API timestamp to the second, in UTC."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _idempotency_key() -> dict[str, str]:
    """A fresh Idempotency-Key for a create: the API answers a repeat with the first answer, so
    a request whose connection closed without an answer may be sent again."""
    return {"Idempotency-Key": str(uuid.uuid4())}


@app.command()
def login(
    app_id: Annotated[
        str | None,
        typer.Option(
            "--app", help="Sign in as a person through this app (app_…): the browser, no password here."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_URL", help="The gateway, e.g. https://social.agency.example"),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(help="Scopes to ask for: 'read write' (--app), 'scim webhooks' (--client-id)."),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="With --app: print the address, do not open a browser.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="With --app: seconds to wait for the browser to come back.")
    ] = codeflow.DEFAULT_TIMEOUT,
    redirect_uri: Annotated[
        str,
        typer.Option(help="With --app: the app's loopback redirect URI; without a port, any free one."),
    ] = codeflow.DEFAULT_REDIRECT_URI,
    client_id: Annotated[str | None, typer.Option(help="An integrator client (client_credentials).")] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_CLIENT_SECRET", help="Asked for when not given.", show_default=False),
    ] = None,
    user: Annotated[str | None, typer.Option(help="A person's email (password grant, for scripts).")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="SOCIALCTL_PASSWORD", help="Asked for when not given.", show_default=False),
    ] = None,
    persona: Annotated[
        Literal["professional", "personal"], typer.Option(help="With --user: which face to sign in as.")
    ] = ("professional"),
) -> None:
    """Sign in as a person through an app (--app), as an integrator client, or with a password.

    With --app, socialctl opens the app's sign-in page in a browser and listens on 127.0.0.1
    for its answer (register the app with the redirect URI http://127.0.0.1/callback): you sign
    in and choose the persona there, and socialctl never sees the password. --user is the
    password grant, for scripts. The token is kept in the configuration file (mode 0600) with
    what renews it: the refresh token (never the password), or the client secret."""
    if sum(given is not None for given in (app_id, client_id, user)) != 1:
        raise _fail("Give one of --app (a person, in the browser), --client-id or --user.", code=2)
    config = Config(url=(url or configuration.load().url).rstrip("/"))
    if app_id is not None:
        try:
            loopback = codeflow.Loopback.parse(redirect_uri)
        except ValueError as exc:
            raise _fail(f"--redirect-uri: {exc}", code=2) from None
        config.app_id = app_id

        async def sign_in() -> None:
            async with api(config) as client:
                client.remember(
                    await codeflow.sign_in(
                        client,
                        app_id,
                        loopback=loopback,
                        scope=scope,
                        within=timeout,
                        show=_show_authorization_url,
                        warn=lambda line: err.print(Text(line, style="yellow")),
                        browser=not no_browser,
                    )
                )
                config.username = await _name_of(client)

        run(sign_in())
        _saved(config)
        return
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

    async def with_grant() -> None:
        async with api(config) as client:
            client.remember(await client.token(grant))

    run(with_grant())
    _saved(config)


def _show_authorization_url(url: str) -> None:
    """The address on a line of its own (stderr), so it can be copied to a browser elsewhere."""
    err.print("Sign in and choose your persona in the browser, at this address:")
    err.print(Text(url))
    err.print("Waiting for the browser to come back…", style="dim")


async def _name_of(client: Api) -> str | None:
    """How whoami names the person signed in through an app: the account's email with a
    professional token, the persona's @handle with a personal one (whose /me holds nothing
    of the account)."""
    me = await client.call("GET", "/api/v1/me")
    if me.get("email"):
        return str(me["email"])
    face = me.get(str(me.get("context"))) or {}
    return f"@{face['handle']}" if face.get("handle") else None


def _saved(config: Config) -> None:
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
                form = {"token": config.refresh_token or ""}
                if config.app_id:
                    form["client_id"] = config.app_id  # RFC 7009 §2.1: a public client names itself
                await client.client.post("/api/v1/auth/revoke", data=form)

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
        shown = failures[:MAX_FAILURES_SHOWN]
        table = Table(title="Failed rows", title_justify="left")
        _id_column(table, "line", (f.line for f in shown))
        _id_column(table, "user_name", (f.user_name for f in shown))
        table.add_column("error", overflow="fold")
        for failure in shown:
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
    objective: Annotated[str, typer.Option(help="The charter: what the group sets out to do.")],
    audience: Annotated[str, typer.Option(help="The charter: whom the group is for.")],
    review_at: Annotated[
        str, typer.Option(help="The charter: when its owners review it (a date, or 90d from today).")
    ],
    indicator: Annotated[
        list[str] | None, typer.Option(help="The charter: a sign of success; repeat for several.")
    ] = None,
    steward: Annotated[
        list[str] | None, typer.Option(help="The charter: a steward's persona id; repeat (you by default).")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for several.")] = None,
    visibility: Annotated[Literal["open", "closed", "secret"], typer.Option()] = "open",
    as_json: JsonFlag = False,
) -> None:
    """Create a purpose group in the signed-in persona's context; the persona owns it.

    A group exists for its purpose and its charter: the objective, the audience and the date
    of its review are required."""
    charter: dict[str, Any] = {"objective": objective, "audience": audience, "review_at": _day(review_at)}
    if indicator:
        charter["success_indicators"] = indicator
    if steward:
        charter["stewards"] = steward
    body: dict[str, Any] = {
        "name": name,
        "handle": handle,
        "purpose": purpose,
        "visibility": visibility,
        "charter": charter,
    }
    if description:
        body["description"] = description
    if tag:
        body["tags"] = tag

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call(
                "POST", "/api/v1/groups", json=body, headers=_idempotency_key()
            )
            return created

    group = run(work())
    if as_json:
        _print_json(group)
    else:
        out.print(Text(f"Created group {group['handle']} ({group['context']}): {group['id']}"))


def _day(value: str) -> str:
    """An ISO 8601 date, or a number of days from today such as 90d."""
    try:
        if value[:-1].isdigit() and value.endswith("d"):
            return (datetime.now(UTC).date() + timedelta(days=int(value[:-1]))).isoformat()
        return date.fromisoformat(value).isoformat()
    except (ValueError, OverflowError):
        raise typer.BadParameter("give an ISO 8601 date or a number of days such as 90d") from None


def _when(value: str) -> str:
    """An ISO 8601 time, or a duration from now such as 7d or 12h."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    try:
        if value[:-1].isdigit() and value[-1:] in units:
            return (datetime.now(UTC) + timedelta(**{units[value[-1]]: int(value[:-1])})).isoformat()
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
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
            created: dict[str, Any] = await client.call(
                "POST", "/api/v1/posts", json=body, headers=_idempotency_key()
            )
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
        _write_secret(secret_file, secret)
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
    table = Table()
    _id_column(table, "id", (e["id"] for e in endpoints))
    table.add_column("url", overflow="fold", min_width=12)
    table.add_column("events", overflow="fold", min_width=8)
    table.add_column("contexts", overflow="fold", min_width=8)
    table.add_column("active", no_wrap=True)
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


@webhooks_app.command("delete")
def delete_webhook(webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")]) -> None:
    """Remove a webhook endpoint: it receives nothing more, pending deliveries included."""

    async def work() -> None:
        async with api() as client:
            await client.call("DELETE", f"/api/v1/webhooks/{webhook_id}")

    run(work())
    out.print(Text(f"Removed webhook {webhook_id}."))


@webhooks_app.command("deliveries")
def list_deliveries(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N deliveries.")] = 20,
    every: Annotated[bool, typer.Option("--all", help="Show every delivery the log keeps.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """An endpoint's delivery log, newest first: each event sent, its outcome and attempts.

    A failed delivery can be sent again with `socialctl webhooks redeliver`."""
    path = f"/api/v1/webhooks/{webhook_id}/deliveries"

    async def work() -> list[dict[str, Any]]:
        async with api() as client:
            # one more than asked for tells whether the log holds more
            return await client.collect(path) if every else await client.collect(path, most=limit + 1)

    deliveries = run(work())
    more = not every and len(deliveries) > limit
    deliveries = deliveries if every else deliveries[:limit]
    if as_json:
        _print_json(deliveries)
        return
    if not deliveries:
        out.print("No deliveries.")
        return
    table = Table()
    _id_column(table, "id", (d["id"] for d in deliveries))
    _id_column(table, "event", (d["event_id"] for d in deliveries))
    table.add_column("type", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("last answer", overflow="fold", min_width=8)
    table.add_column("created", overflow="fold", min_width=10)
    for delivery in deliveries:
        code = delivery.get("last_status_code")
        table.add_row(
            str(delivery["id"]),
            str(delivery["event_id"]),
            Text(str(delivery["event_type"])),
            str(delivery["status"]),
            str(delivery["attempt_count"]),
            Text(f"HTTP {code}" if code else str(delivery.get("last_error") or "")),
            _moment(delivery.get("created_at")),
        )
    out.print(table)
    if more:
        out.print(f"The newest {limit} shown; --limit N shows more, --all every one.", style="dim")


@webhooks_app.command("redeliver")
def redeliver(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    delivery_id: Annotated[int, typer.Argument(min=1, help="The delivery's id (webhooks deliveries).")],
) -> None:
    """Send a delivery again, whatever its outcome was: it is queued, with its attempts counted
    afresh."""

    async def work() -> None:
        async with api() as client:
            await client.call("POST", f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")

    run(work())
    out.print(Text(f"Queued delivery {delivery_id} of webhook {webhook_id} again."))


class AppScope(StrEnum):
    """What an app may ask people for (decision 0035)."""

    read = "read"
    write = "write"


def _write_secret(path: Path, secret: str) -> None:
    """A secret the API shows once, to a file only its owner reads."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


@apps_app.command("create")
def create_app(
    name: Annotated[str, typer.Option(help="The app's name, shown to people when they consent.")],
    redirect_uri: Annotated[
        list[str],
        typer.Option(
            help="Where the browser comes back with the code (exact; loopback on any port); repeat."
        ),
    ],
    public: Annotated[
        bool,
        typer.Option("--public", help="It runs on people's devices (browser, phone, terminal): no secret."),
    ] = False,
    confidential: Annotated[
        bool, typer.Option("--confidential", help="It runs on a server: it gets a secret, shown once.")
    ] = False,
    scope: Annotated[
        list[AppScope] | None,
        typer.Option(help="What it may ask for: read, write; repeat (both when not given)."),
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="--confidential: write the app's secret to this file, mode 0600.")
    ] = None,
    show_secret: Annotated[
        bool, typer.Option("--show-secret", help="--confidential: print the secret instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register an app that signs people in with the authorization-code flow and PKCE.

    A public app (--public) holds no secret; a confidential one (--confidential) is shown its
    secret once: save it with --secret-file, or print it with --show-secret. For socialctl
    login --app, register http://127.0.0.1/callback."""
    if public == confidential:
        raise _fail("Give either --public or --confidential.", code=2)
    if public and (secret_file is not None or show_secret):
        raise _fail("A public app has no secret: leave out --secret-file and --show-secret.", code=2)
    if confidential and secret_file is None and not show_secret:
        raise _fail("The app's secret is shown once: give --secret-file PATH or --show-secret.", code=2)
    body: dict[str, Any] = {
        "name": name,
        "kind": "public" if public else "confidential",
        "redirect_uris": redirect_uri,
    }
    if scope:
        body["scopes"] = list(dict.fromkeys(str(s) for s in scope))

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call("POST", "/api/v1/admin/apps", json=body)
            return created

    created = run(work())
    secret = created.pop("client_secret", None)
    if secret is not None and secret_file is not None:
        _write_secret(secret_file, str(secret))
    if as_json:
        _print_json({**created, "client_secret": secret} if show_secret and secret else created)
        return
    scopes = " ".join(created.get("scopes", []))
    out.print(Text(f"Registered {created['kind']} app {created['id']} ({created['name']}), scope: {scopes}"))
    for uri in created.get("redirect_uris", []):
        out.print(Text(f"  redirect URI: {uri}"))
    if secret is not None and secret_file is not None:
        out.print(Text(f"Its secret is written to {secret_file} (mode 0600)."), style="dim")
    if secret is not None and show_secret:
        out.print(Text(f"Its secret (shown once): {secret}"))


@apps_app.command("list")
def list_apps(as_json: JsonFlag = False) -> None:
    """Every registered app (administrators), revoked ones too."""

    async def work() -> list[dict[str, Any]]:
        async with api() as client:
            return await client.collect("/api/v1/admin/apps")

    apps = run(work())
    if as_json:
        _print_json(apps)
        return
    if not apps:
        out.print("No apps.")
        return
    table = Table()
    _id_column(table, "id", (a["id"] for a in apps))
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("kind", overflow="fold", min_width=6)
    table.add_column("scopes", min_width=5)
    table.add_column("redirect URIs", overflow="fold", min_width=12)
    table.add_column("active", no_wrap=True)
    for item in apps:
        table.add_row(
            str(item["id"]),
            Text(str(item["name"])),
            str(item["kind"]),
            " ".join(item.get("scopes", [])),
            Text("\n".join(item.get("redirect_uris", []))),
            "no" if item.get("revoked_at") else "yes",
        )
    out.print(table)


@apps_app.command("delete")
def delete_app(app_id: Annotated[str, typer.Argument(help="The app's id (app_…).")]) -> None:
    """Revoke an app: its refresh tokens and unused codes stop working at once, and the access
    tokens it holds when they expire (minutes)."""

    async def work() -> None:
        async with api() as client:
            await client.call("DELETE", f"/api/v1/admin/apps/{app_id}")

    run(work())
    out.print(Text(f"Revoked app {app_id}."))


class ClientScope(StrEnum):
    """What an integrator client may do: provision accounts (scim), manage webhooks, read, write."""

    scim = "scim"
    webhooks = "webhooks"
    read = "read"
    write = "write"


@clients_app.command("create")
def create_client(
    name: Annotated[str, typer.Option(help="The client's name, e.g. the system it is: HR sync.")],
    scope: Annotated[
        list[ClientScope], typer.Option(help="What it may do: scim, webhooks, read, write; repeat.")
    ],
    secret_file: Annotated[
        Path | None, typer.Option(help="Write the client's secret to this file, mode 0600.")
    ] = None,
    show_secret: Annotated[
        bool, typer.Option("--show-secret", help="Print the client's secret instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register an integrator client, which signs in with its id and secret (client_credentials).

    The API shows the secret once: save it with --secret-file, or print it with --show-secret.
    The client then signs in with `socialctl login --client-id ID` (the secret asked for, or
    read from SOCIALCTL_CLIENT_SECRET)."""
    if secret_file is None and not show_secret:
        raise _fail("The client's secret is shown once: give --secret-file PATH or --show-secret.", code=2)
    body = {"name": name, "scopes": list(dict.fromkeys(str(s) for s in scope))}

    async def work() -> dict[str, Any]:
        async with api() as client:
            created: dict[str, Any] = await client.call("POST", "/api/v1/admin/clients", json=body)
            return created

    created = run(work())
    secret = str(created.pop("client_secret", ""))
    if secret_file is not None:
        _write_secret(secret_file, secret)
    if as_json:
        _print_json({**created, "client_secret": secret} if show_secret else created)
        return
    scopes = " ".join(created.get("scopes", []))
    out.print(Text(f"Registered client {created['client_id']} ({created['name']}), scope: {scopes}"))
    if secret_file is not None:
        out.print(Text(f"Its secret is written to {secret_file} (mode 0600)."), style="dim")
    if show_secret:
        out.print(Text(f"Its secret, shown this once and never again: {secret}"))


@clients_app.command("list")
def list_clients(as_json: JsonFlag = False) -> None:
    """Every integrator client, revoked ones too."""

    async def work() -> list[dict[str, Any]]:
        async with api() as client:
            return await client.collect("/api/v1/admin/clients")

    clients = run(work())
    if as_json:
        _print_json(clients)
        return
    if not clients:
        out.print("No clients.")
        return
    table = Table()
    _id_column(table, "id", (c["client_id"] for c in clients))
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("scopes", overflow="fold", min_width=6)
    table.add_column("created", overflow="fold", min_width=10)
    table.add_column("active", no_wrap=True)
    for item in clients:
        table.add_row(
            str(item["client_id"]),
            Text(str(item["name"])),
            " ".join(item.get("scopes", [])),
            _moment(item.get("created_at")),
            "no" if item.get("revoked_at") else "yes",
        )
    out.print(table)


@clients_app.command("delete")
def delete_client(client_id: Annotated[str, typer.Argument(help="The client's id (cl_…).")]) -> None:
    """Revoke an integrator client: its tokens stop working at once, its webhook endpoints are
    disabled and what they had pending is never sent."""

    async def work() -> None:
        async with api() as client:
            await client.call("DELETE", f"/api/v1/admin/clients/{client_id}")

    run(work())
    out.print(Text(f"Revoked client {client_id}."))


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
