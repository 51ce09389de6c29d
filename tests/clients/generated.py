"""The Python client that openapi-python-client generates from the OpenAPI document, and the
way in to it by operationId.

Operation ids are the stable part of the contract; schema names are not (a model may be
renamed without any client-visible change on the wire). So a caller here names an operation,
and the request body's model is the one the generated function declares, built from JSON: no
schema name appears outside the generated code."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import httpx

BIN = Path(sys.executable).parent
PACKAGE = "govsocial_client"
# The export packages are zips: this generator reads a download's body only as
# application/octet-stream, so it is told to treat the one as the other.
CONTENT_TYPE_OVERRIDES = {"application/zip": "application/octet-stream"}
_STATUS_BRANCH = re.compile(r"^    if response\.status_code == (\d{3}):$", re.MULTILINE)
_FROM_DICT = re.compile(r"\b([A-Z]\w*)\.from_dict\(")
FORM = "application/x-www-form-urlencoded"


def generate(spec: Path, folder: Path, package: str = PACKAGE) -> None:
    """Writes the client of ``spec`` as ``folder/package``, failing on any generator warning."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.json"
    config.write_text(
        json.dumps(
            {
                "package_name_override": package,
                "post_hooks": [],
                "content_type_overrides": CONTENT_TYPE_OVERRIDES,
            }
        )
    )
    command = [str(BIN / "openapi-python-client"), "generate", "--path", str(spec), "--config", str(config)]
    command += ["--meta", "none", "--output-path", str(folder / package), "--overwrite", "--fail-on-warning"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"openapi-python-client failed:\n{result.stdout}{result.stderr}")


class UnexpectedStatus(AssertionError):
    """An operation answered with another status than the caller expected."""


class Generated:
    """A generated package, imported from ``folder``, its operations found by operationId."""

    def __init__(self, folder: Path, package: str = PACKAGE) -> None:
        self.folder, self.package = folder, package
        sys.path.insert(0, str(folder))
        self.client = importlib.import_module(f"{package}.client")
        self.models = importlib.import_module(f"{package}.models")
        api = folder / package / "api"
        self.modules = {
            path.stem: f"{package}.api.{path.parent.name}.{path.stem}"
            for path in api.glob("*/*.py")
            if path.stem != "__init__"
        }

    def unload(self) -> None:
        """Forgets the package, so that another one of the same name can be imported."""
        sys.path.remove(str(self.folder))
        for name in [m for m in sys.modules if m == self.package or m.startswith(self.package + ".")]:
            del sys.modules[name]

    def operation(self, operation_id: str) -> ModuleType:
        if operation_id not in self.modules:
            raise AssertionError(f"the generated client has no operation {operation_id}")
        return importlib.import_module(self.modules[operation_id])

    def anonymous(self, base_url: str, transport: httpx.BaseTransport | None = None) -> Any:
        client = self.client.Client(base_url=base_url, raise_on_unexpected_status=True)
        if transport is not None:
            client.set_httpx_client(httpx.Client(base_url=base_url, transport=transport))
        return client

    def authenticated(self, base_url: str, token: str) -> Any:
        return self.client.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True
        )

    def body(self, operation_id: str, data: dict[str, Any]) -> Any:
        """``data`` (JSON) as the model the operation's generated function takes for its body."""
        function = self.operation(operation_id).sync_detailed
        if "body" not in inspect.signature(function).parameters:
            raise AssertionError(
                f"{operation_id}: the generated function takes no body (the document declares none)"
            )
        declared = typing.get_type_hints(function)["body"]
        refused = "it is no generated model"
        for model in [t for t in typing.get_args(declared) or (declared,) if hasattr(t, "from_dict")]:
            try:
                body = model.from_dict(data)
            except (KeyError, TypeError, ValueError) as exc:
                refused = f"{model.__name__}.from_dict: {exc}"
                continue  # one variant of a union that does not take these fields
            if not getattr(body, "additional_properties", None):
                return body
            refused = f"{model.__name__} keeps {sorted(body.additional_properties)} as unknown fields"
        raise AssertionError(f"{operation_id}: its body {sorted(data)} was refused ({refused})")

    def call(
        self,
        client: Any,
        operation_id: str,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """Calls the operation through its generated function; the answer must have ``status``
        and, unless it is a 204, parse to a generated model (or a list of them)."""
        arguments = dict(params)
        if body is not None:
            arguments["body"] = self.body(operation_id, body)
        response = self.operation(operation_id).sync_detailed(client=client, **arguments)
        if response.status_code != status:
            raise UnexpectedStatus(
                f"{operation_id}: {int(response.status_code)} instead of {status}: {response.content[:500]!r}"
            )
        parsed = response.parsed
        if status != 204:
            items = parsed if isinstance(parsed, list) else [parsed]
            if not all(self.is_model(item) for item in items):
                kind = type(parsed).__name__
                raise AssertionError(
                    f"{operation_id}: its {status} answer parsed to {kind}, not a generated model"
                )
        return parsed

    def is_model(self, value: Any) -> bool:
        """Whether ``value`` is an instance of a generated model with declared fields (not a
        bare object that only keeps additional properties)."""
        cls = type(value)
        return cls.__module__.startswith(f"{self.package}.models") and _declares_fields(cls)

    def untyped_successes(self, document: dict[str, Any]) -> list[str]:
        """Every success answer of the document (but a 204 and non-JSON bodies) whose generated
        parser does not build a generated model with declared fields, as ``operationId STATUS:
        why``."""
        found = []
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for status, answer in operation["responses"].items():
                    if not status.startswith("2") or status == "204":
                        continue
                    content = answer.get("content", {})
                    if content and not any(_is_json(media) for media in content):
                        continue
                    why = self._untyped(operation["operationId"], int(status), content)
                    if why:
                        found.append(f"{operation['operationId']} ({method.upper()} {path}) {status}: {why}")
        return found

    def untyped_bodies(self, document: dict[str, Any]) -> list[str]:
        """Every operation whose generated function takes its JSON or form body as no generated
        model with declared fields (``Any``, or no body at all), as ``operationId: why``."""
        found = []
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                content = (
                    operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
                )
                if not any(_is_json(media) or media == FORM for media in content):
                    continue
                function = self.operation(operation["operationId"]).sync_detailed
                declared = typing.get_type_hints(function).get("body")
                variants = typing.get_args(declared) or (declared,)
                if not any(isinstance(v, type) and _declares_fields(v) for v in variants):
                    found.append(
                        f"{operation['operationId']} ({method.upper()} {path}) body: taken as {declared}"
                    )
        return found

    def _untyped(self, operation_id: str, status: int, content: dict[str, Any]) -> str | None:
        if not content:
            return "the document declares no body"
        branches = _status_branches(inspect.getsource(self.operation(operation_id)._parse_response))
        code = branches.get(status)
        if code is None:
            return "the generated client does not parse it"
        names = _FROM_DICT.findall(code)
        if not names:
            return "parsed as Any (no model)"
        bare = [n for n in names if not _declares_fields(getattr(self.models, n))]
        if bare:
            return f"{', '.join(bare)} declares no field (a bare object)"
        return None


def _is_json(media_type: str) -> bool:
    return media_type.split(";")[0].strip().endswith("json")


def _declares_fields(cls: type) -> bool:
    return attrs.has(cls) and any(field.name != "additional_properties" for field in attrs.fields(cls))


def _status_branches(source: str) -> dict[int, str]:
    """The code of each ``if response.status_code == N:`` branch of a generated parser."""
    marks = list(_STATUS_BRANCH.finditer(source))
    ends = [m.start() for m in marks[1:]] + [len(source)]
    return {int(m.group(1)): source[m.end() : end] for m, end in zip(marks, ends, strict=True)}
