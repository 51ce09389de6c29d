"""Problems answer in English or French (docs/i18n.md): the negotiation of ``Accept-Language``,
a catalogue that translates every detail and title the code writes and nothing else, and the
whole suite answering in the language asked for, the gateway's own problems included."""

from __future__ import annotations

import ast
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po

from kit.errors import Unprocessable, problem_body
from kit.i18n import CATALOGUES, ENGLISH, FRENCH, negotiate, translate
from tests.helpers import auth, person, unique

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("kit", "domain", "gateway", "services")

# The calls that take a problem's detail, other than the error family's own (first argument
# or ``detail=``): where the detail is, as (position, keyword); None for a call whose detail is
# not translated or is written inside it.
DETAIL_ARGUMENTS: dict[str, tuple[int, str] | None] = {
    "problem_response": (3, "detail"),
    "OAuthError": (1, "description"),
    "invalid_code": (0, "description"),  # identity's grants: an OAuthError's description
    "_too_large": (0, "detail"),  # media's uploads: a PayloadTooLarge's detail
    "UpstreamFault": (1, "detail"),  # the gateway's faults of a service, rendered as problems
    "ScimError": None,  # SCIM's own error format stays English
    "RangeNotSatisfiable": None,  # its detail is written in its __init__
}
TITLE_ARGUMENTS: dict[str, tuple[int | None, str]] = {"problem_response": (2, "title")}


@dataclass
class Extracted:
    """The messages the code writes (text to where it is written) and the details that cannot
    be read as messages."""

    messages: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def add(self, text: str, where: str) -> None:
        self.messages.setdefault(text, []).append(where)


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    if position is not None and len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class _Reader(ast.NodeVisitor):
    """Reads one module: each detail and title given to the calls that take one, and the
    titles of the error classes."""

    def __init__(self, where: str, tree: ast.Module, family: set[str], constants: dict[str, str]) -> None:
        self.where, self.family, self.constants = where, family, constants
        self.local: dict[str, str] = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.classes: list[ast.ClassDef] = []
        self.out = Extracted()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node)
        if node.name in self.family:
            for statement in node.body:
                if isinstance(statement, ast.Assign):
                    self._class_titles(statement)
        self.generic_visit(node)
        self.classes.pop()

    def _class_titles(self, statement: ast.Assign) -> None:
        for target in statement.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            values = statement.value.elts if isinstance(statement.value, ast.Tuple) else [statement.value]
            for name, value in zip(names, values, strict=False):
                if isinstance(name, ast.Name) and name.id == "title" and isinstance(value, ast.Constant):
                    self.out.add(value.value, f"{self.where}:{statement.lineno}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        spec = DETAIL_ARGUMENTS.get(node.name)
        if spec is not None:  # a helper's default detail
            arguments = node.args.args[-len(node.args.defaults) :] if node.args.defaults else []
            for argument, default in zip(arguments, node.args.defaults, strict=True):
                if argument.arg == spec[1]:
                    self._detail(default, None, node)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        in_error_class = bool(self.classes) and self.classes[-1].name in self.family
        for target in node.targets:
            titled = isinstance(target, ast.Attribute) and target.attr == "title"  # self.title = …
            if titled and in_error_class and isinstance(node.value, ast.Constant):
                self.out.add(node.value.value, f"{self.where}:{node.lineno}")
            if isinstance(target, ast.Name) and target.id.endswith("_TITLES") and not self.functions:
                self._title_table(node.value)
        self.generic_visit(node)

    def _title_table(self, table: ast.expr) -> None:
        for value in ast.walk(table):
            if isinstance(value, ast.Dict):
                for item in value.values:
                    first = item.elts[0] if isinstance(item, ast.Tuple) else item
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        self.out.add(first.value, f"{self.where}:{first.lineno}")

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name in DETAIL_ARGUMENTS:
            spec = DETAIL_ARGUMENTS[name]
        elif name in self.family:
            spec = (0, "detail")
        elif name == "__init__" and self.classes and self.classes[-1].name in self.family:
            spec = (0, "detail")  # super().__init__(...) in an error class
        else:
            spec = None
        if spec is not None and (detail := _argument(node, *spec)) is not None:
            self._detail(detail, node, self.functions[-1] if self.functions else None)
        if name in self.family or name in TITLE_ARGUMENTS:  # the family takes title= only
            title = _argument(node, *TITLE_ARGUMENTS.get(name or "", (None, "title")))
            if isinstance(title, ast.Constant):
                self.out.add(title.value, f"{self.where}:{title.lineno}")
        self.generic_visit(node)

    def _detail(
        self, node: ast.expr, call: ast.Call | None, function: ast.FunctionDef | ast.AsyncFunctionDef | None
    ) -> None:
        where = f"{self.where}:{node.lineno}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.out.add(node.value, where)
            self._check_params(node.value, call, where)
        elif isinstance(node, ast.IfExp):
            self._detail(node.body, call, function)
            self._detail(node.orelse, call, function)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._detail(value, call, function)
        elif isinstance(node, ast.Name) and node.id in self.local:
            self.out.add(self.local[node.id], where)
        elif isinstance(node, ast.Attribute) and node.attr in self.constants:
            self.out.add(self.constants[node.attr], where)  # another module's constant
        elif isinstance(node, ast.Attribute) and node.attr in {"detail", "template"}:
            pass  # an error's own detail, read where the error was made
        elif isinstance(node, ast.Name) and node.id == "title":
            pass  # a title given as the detail: titles are read where they are written
        elif isinstance(node, ast.Name) and function is not None and self._passes_on(node.id, function):
            pass  # a helper's parameter: read at its callers, and its default above
        elif isinstance(node, ast.Name) and function is not None and (values := _assigned(node.id, function)):
            for value in values:
                self._detail(value, call, None)
        else:
            self.out.unreadable.append(f"{where}: {ast.unparse(node)}")

    def _passes_on(self, name: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Whether ``name`` is a parameter of a helper whose callers are read: one of
        ``DETAIL_ARGUMENTS`` or the constructor of an error class."""
        parameters = {a.arg for a in [*function.args.args, *function.args.kwonlyargs]}
        in_error_class = bool(self.classes) and self.classes[-1].name in self.family
        helper = function.name in DETAIL_ARGUMENTS or (function.name == "__init__" and in_error_class)
        return name in parameters and helper

    def _check_params(self, template: str, call: ast.Call | None, where: str) -> None:
        """A template's placeholders are the names of the values given with it."""
        if call is None:
            return
        params = next((k.value for k in call.keywords if k.arg == "params"), None)
        if params is not None and not isinstance(params, ast.Dict):
            return  # values built apart: the suite's tests render them
        given = {key.value for key in params.keys if isinstance(key, ast.Constant)} if params else set()
        if _placeholders(template) != given:
            self.out.unreadable.append(
                f"{where}: placeholders {sorted(_placeholders(template))}, params {sorted(given)}"
            )


def _assigned(name: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """What ``name`` is given in ``function``, as ``name = …`` or ``…, name = …, …``."""
    values: list[ast.expr] = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple):
                names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
                if name in names:
                    value = node.value
                    unpacked = isinstance(value, ast.Tuple) and len(value.elts) == len(names)
                    values.append(
                        value.elts[names.index(name)] if isinstance(value, ast.Tuple) and unpacked else value
                    )
    return values


def _family(trees: list[tuple[str, ast.Module]]) -> set[str]:
    """APIError and every class derived from it, in any module."""
    family = {"APIError"}
    while True:
        derived = {
            node.name
            for _, tree in trees
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and any(_name(base) in family for base in node.bases)
        }
        if derived <= family:
            return family
        family |= derived


def extract() -> Extracted:
    trees = list(_sources())
    family = _family(trees)
    constants = {
        target.id: node.value.value
        for _, tree in trees
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }
    extracted = Extracted()
    for where, tree in trees:
        reader = _Reader(where, tree, family, constants)
        reader.visit(tree)
        for text, places in reader.out.messages.items():
            extracted.messages.setdefault(text, []).extend(places)
        extracted.unreadable.extend(reader.out.unreadable)
    return extracted


@pytest.fixture(scope="module")
def extracted() -> Extracted:
    return extract()


@pytest.fixture(scope="module")
def french() -> dict[str, str]:
    with (CATALOGUES / "fr.po").open("rb") as po:
        catalogue = read_po(po, locale="fr", abort_invalid=True)
    assert not [m.id for m in catalogue if m.id and m.fuzzy], "fuzzy entries are not used"
    return {str(m.id): str(m.string) for m in catalogue if m.id}


# --- the catalogue ----------------------------------------------------------------------


def test_every_detail_is_a_literal_or_a_template_with_its_values(extracted):
    """An f-string or a text built at run time cannot be in the catalogue: a detail with
    values is a template and its ``params``."""
    assert extracted.unreadable == []


def test_the_extraction_finds_the_messages_of_every_kind(extracted):
    found = extracted.messages
    assert "A persona follows at most {limit} personas." in found  # a template
    assert "No resource at this path." in found  # a handler's own
    assert "Not Found" in found and "Bad Gateway" in found  # titles: a class's, a table's
    assert "The code is not valid, has expired or was used." in found  # a helper's default


def test_every_message_has_a_french_translation(extracted, french):
    missing = {text: places[0] for text, places in extracted.messages.items() if not french.get(text)}
    assert missing == {}


def test_every_translation_is_of_a_message_the_code_writes(extracted, french):
    assert sorted(set(french) - set(extracted.messages)) == []


def test_translations_keep_the_placeholders_of_their_template(french):
    differ = {
        text: translated
        for text, translated in french.items()
        if translated and _placeholders(text) != _placeholders(translated)
    }
    assert differ == {}
    assert all(name.isidentifier() for text in french for name in _placeholders(text))


# --- negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, ENGLISH),
        ("", ENGLISH),
        ("fr", FRENCH),
        ("fr-CA", FRENCH),
        ("FR-ca", FRENCH),
        ("fr-FR;q=0.9", FRENCH),
        ("en", ENGLISH),
        ("en-CA,fr-CA;q=0.8", ENGLISH),
        ("fr-CA,en-CA;q=0.8", FRENCH),
        ("en;q=0.5, fr;q=0.9", FRENCH),
        ("de, fr;q=0.5", FRENCH),  # an unknown language is passed over
        ("de-DE, es", ENGLISH),
        ("*", ENGLISH),
        ("*;q=0.9, fr;q=0.5", ENGLISH),
        ("fr;q=0", ENGLISH),  # not acceptable
        ("fr;q=0, *", ENGLISH),
        ("en;q=0, fr", FRENCH),
        ("en;q=0.5, fr;q=0.5", ENGLISH),  # equal weights: the first
        ("fr;q=2", ENGLISH),  # weights above 1 do not parse
        ("fr;q=abc", ENGLISH),
        ("fr;level=1", ENGLISH),
        ("fr;q=0.5;x=1", ENGLISH),
        ("fr_CA", ENGLISH),
        (";;;,,,", ENGLISH),
        ("français", ENGLISH),
        ("fr-" + "x" * 9, ENGLISH),
        ("en;q=0.1, garbage;;q=x, fr;q=0.2", FRENCH),  # what does not parse is passed over
        ("x, " * 5000 + "fr", ENGLISH),  # past the ranges read
    ],
)
def test_accept_language_picks_english_or_french(header, language):
    assert negotiate(header) == language


def test_translation_fills_the_template_with_its_values_as_given(french):
    template = "A persona follows at most {limit} personas."
    assert translate(template, FRENCH, {"limit": 5000}) == french[template].format(limit=5000)
    assert "5000" in translate(template, FRENCH, {"limit": 5000})
    assert translate(template, ENGLISH, {"limit": 5000}) == "A persona follows at most 5000 personas."
    assert translate("Not a message of the code.", FRENCH) == "Not a message of the code."


def test_an_error_keeps_its_english_text_and_renders_in_french():
    error = Unprocessable("A persona follows at most {limit} personas.", params={"limit": 7})
    assert error.detail == str(error) == "A persona follows at most 7 personas."
    body = error.problem(language=FRENCH)
    assert body["detail"] == translate(error.template, FRENCH, {"limit": 7}) != error.detail
    assert body["title"] == translate("Unprocessable Content", FRENCH) != error.title
    assert body["type"] == error.problem()["type"]


def test_problem_body_translates_only_title_and_detail():
    errors = [{"location": "body.name", "message": "Field required", "code": "missing"}]
    body = problem_body(
        404, "Not Found", "No resource at this path.", slug="not-found", errors=errors, language=FRENCH
    )
    english = problem_body(404, "Not Found", "No resource at this path.", slug="not-found", errors=errors)
    assert set(body) == set(english)
    assert {k: v for k, v in body.items() if k not in {"title", "detail"}} == {
        k: v for k, v in english.items() if k not in {"title", "detail"}
    }
    assert body["title"] != english["title"] and body["detail"] != english["detail"]


# --- the suite --------------------------------------------------------------------------


def _in(resp: httpx.Response, language: str, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["content-language"] == language
    assert "accept-language" in resp.headers["vary"].lower()
    body: dict = resp.json()
    return body


FR = {"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.8"}
GROUPS, HOME = "/api/v1/groups", "/api/v1/timelines/home"


async def test_a_services_404_through_the_gateway_answers_in_french(suite):
    token, _ = await person(suite.client, unique("lang"))
    await suite.deliver()  # the persona reaches groups' replica
    path = f"/api/v1/groups/{uuid.uuid4()}"
    english = _in(await suite.client.get(path, headers=auth(token)), ENGLISH, 404)
    french = _in(await suite.client.get(path, headers={**auth(token), **FR}), FRENCH, 404)
    assert english["detail"] == "No group with this id."  # groups' own, not the gateway's
    assert french["detail"] == translate(english["detail"], FRENCH) != english["detail"]
    assert french["title"] == "Introuvable"
    assert (french["type"], french["status"], french["instance"]) == (
        english["type"],
        english["status"],
        english["instance"],
    )


async def test_a_validation_problem_answers_in_french_with_stable_errors(suite):
    token, _ = await person(suite.client, unique("lang"))
    await suite.deliver()  # the persona reaches groups' replica
    english = _in(await suite.client.post(GROUPS, json={"name": 5}, headers=auth(token)), ENGLISH, 422)
    french = _in(
        await suite.client.post(GROUPS, json={"name": 5}, headers={**auth(token), **FR}), FRENCH, 422
    )
    assert english["detail"] == "The request has invalid fields."
    assert french["detail"] == translate("The request has invalid fields.", FRENCH) != english["detail"]
    assert french["errors"] == english["errors"]  # locations, codes (and pydantic's messages)


async def test_the_gateways_own_401_answers_in_french(suite):
    english = _in(await suite.client.get(HOME), ENGLISH, 401)
    french = _in(await suite.client.get(HOME, headers=FR), FRENCH, 401)
    assert french["detail"] == translate(english["detail"], FRENCH) != english["detail"]
    assert french["type"] == english["type"]


async def test_the_gateways_own_413_answers_in_french(suite):
    limit = suite.gateway.state.settings.max_body_size
    body = b"x" * (limit + 1)
    headers = {"content-type": "application/json"}
    english = _in(await suite.client.post(GROUPS, content=body, headers=headers), ENGLISH, 413)
    french = _in(await suite.client.post(GROUPS, content=body, headers={**headers, **FR}), FRENCH, 413)
    assert english["detail"] == f"The request body exceeds {limit} bytes."
    assert french["detail"] == translate("The request body exceeds {limit} bytes.", FRENCH, {"limit": limit})
    assert str(limit) in french["detail"] and french["detail"] != english["detail"]


async def test_english_is_the_default_and_the_answer_to_what_cannot_be_read(suite):
    for headers in (
        {},
        {"Accept-Language": "*"},
        {"Accept-Language": "de-DE"},
        {"Accept-Language": "fr;q=x"},
    ):
        body = _in(await suite.client.get(HOME, headers=headers), ENGLISH, 401)
        assert body["detail"] == "This operation needs a bearer token."
