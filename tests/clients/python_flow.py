"""The whole flow of the suite through the generated Python client: two people register and
sign in, one makes a group the other joins, they post, comment, react and follow, read their
timelines page by page, their notifications, search and a post's edit history; an HR system
provisions a user over SCIM; an integrator receives a signed webhook. Every call goes through
a generated function and every answer is a generated model; each step checks what it reads.

The same flow in TypeScript is ``ts/flow-openapi-fetch.ts`` and ``ts/flow-hey-api.ts``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.clients.generated import Generated, UnexpectedStatus
from tests.clients.steps import Receiver, Steps, eventually, mailed_token

PASSWORD = "correct horse battery staple"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Person:
    handle: str
    email: str
    token: str = ""
    client: Any = None
    persona_id: Any = None


@dataclass
class Flow:
    api: Generated
    base: str
    log: Path
    client_token: str
    prefix: str = "py"
    people: dict[str, Person] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def person(self, name: str) -> Person:
        handle = f"{self.prefix}_{name}"
        return self.people.setdefault(name, Person(handle, f"{handle}@agency.example"))

    def call(self, who: Person | None, operation_id: str, status: int, **kwargs: Any) -> Any:
        client = who.client if who is not None else self.api.anonymous(self.base)
        return self.api.call(client, operation_id, status, **kwargs)

    # -- the steps ---------------------------------------------------------------------------

    def register(self) -> None:
        for name, display in (("ada", "Ada Lovelace"), ("bob", "Bob Jensen")):
            who = self.person(name)
            body = {"email": who.email, "password": PASSWORD, "handle": who.handle, "display_name": display}
            self.call(None, "create_account", 202, body=body)
            verified = self.call(
                None,
                "verify_account",
                200,
                body={"token": mailed_token(self.log, who.handle), "password": PASSWORD},
            )
            assert verified.to_dict(), verified

    def sign_in(self) -> None:
        for who in (self.person("ada"), self.person("bob")):
            form = {"grant_type": "password", "username": who.email, "password": PASSWORD}
            token = self.call(None, "create_token", 200, body=form)
            assert token.access_token
            who.token = token.access_token
            who.client = self.api.authenticated(self.base, who.token)

    def personas(self) -> None:
        ada, bob = self.person("ada"), self.person("bob")
        for who in (ada, bob):
            me = self.call(who, "get_me", 200)
            assert me.professional.handle == who.handle, me
            who.persona_id = me.professional.id
        personal = f"{ada.handle}_home"
        created = self.call(
            ada, "create_personal_persona", 201, body={"handle": personal, "display_name": "Ada"}
        )
        assert created.handle == personal and created.kind == "personal", created
        seen = self.call(ada, "get_persona", 200, persona_id=bob.persona_id)
        assert (seen.id, seen.handle) == (bob.persona_id, bob.handle), seen

    def group(self) -> None:
        ada = self.person("ada")
        objective = "Share what the analysts learn"
        body = {
            "name": "Analysts",
            "handle": f"{self.prefix}_analysts",
            "purpose": "A place for analysts",
            "visibility": "closed",
            "charter": {
                "objective": objective,
                "audience": "Analysts of every team",
                "review_at": "2027-06-30",
            },
        }
        group = self.call(ada, "create_group", 201, body=body)
        read = self.call(ada, "get_group", 200, group_id=group.id)
        assert (read.id, read.charter.objective) == (group.id, objective), read
        self.ids["group"] = group.id

    def join(self) -> None:
        ada, bob, group = self.person("ada"), self.person("bob"), self.ids["group"]
        asked = self.call(bob, "create_join_request", 201, group_id=group, body={"message": "May I join?"})
        assert (asked.persona_id, asked.status) == (bob.persona_id, "pending"), asked
        self.call(ada, "approve_join_request", 201, group_id=group, persona_id=bob.persona_id, body={})
        members = self.call(ada, "list_members", 200, group_id=group)
        assert bob.persona_id in {m.persona_id for m in members.items}, members

    def post(self) -> None:
        ada, bob, group = self.person("ada"), self.person("bob"), self.ids["group"]
        text = "The quarterly figures are in"
        body = {"body": text, "audience": "group", "group_id": str(group)}
        post = eventually(lambda: self._try(ada, "create_post", 201, body=body), "feed learns of the group")
        assert (post.body, post.group_id) == (text, group), post
        read = eventually(
            lambda: self._try(bob, "get_post", 200, post_id=post.id), "bob sees the group's post"
        )
        assert (read.id, read.body) == (post.id, text), read
        self.ids["post"] = post.id

    def comment(self) -> None:
        bob, post = self.person("bob"), self.ids["post"]
        text = "Thanks, very useful"
        comment = self.call(bob, "create_comment", 201, post_id=post, body={"body": text})
        listed = self.call(bob, "list_comments", 200, post_id=post)
        assert [(c.id, c.body) for c in listed.items] == [(comment.id, text)], listed

    def react(self) -> None:
        bob, post = self.person("bob"), self.ids["post"]
        reacted = self.call(bob, "add_reaction", 201, post_id=post, kind="like")
        assert reacted.id == post and "like" in reacted.reactions.mine, reacted

    def follow(self) -> None:
        ada, bob = self.person("ada"), self.person("bob")
        followed = self.call(bob, "follow_persona", 201, persona_id=ada.persona_id)
        assert followed.persona_id == ada.persona_id, followed
        following = self.call(bob, "list_following", 200)
        assert ada.persona_id in {f.persona_id for f in following.items}, following

    def timelines(self) -> None:
        ada, group = self.person("ada"), self.ids["group"]
        posted = {
            self.call(ada, "create_post", 201, body={"body": f"Note {n} for the home page"}).id
            for n in range(3)
        }
        self.ids["organisation_posts"] = posted
        home = self._two_pages(ada, "get_home_timeline", posted, {})
        assert posted <= home, (posted, home)
        self.call(
            ada,
            "create_post",
            201,
            body={"body": "A second note for the group", "audience": "group", "group_id": str(group)},
        )
        in_group = self._two_pages(ada, "get_group_timeline", set(), {"group_id": group}, limit=1)
        assert self.ids["post"] in in_group, in_group

    def notifications(self) -> None:
        ada, bob = self.person("ada"), self.person("bob")

        def comment_notice() -> Any:
            unread = self.call(ada, "list_notifications", 200, unread=True)
            return unread if any(n.actor.id == bob.persona_id for n in unread.items) else None

        unread = eventually(comment_notice, "ada's notification of bob's comment")
        assert all(n.post_id == self.ids["post"] for n in unread.items), unread
        marked = self.call(ada, "mark_notifications_read", 200, body={"all": True})
        assert marked.marked >= len(unread.items), marked
        assert self.call(ada, "list_notifications", 200, unread=True).items == []

    def search(self) -> None:
        ada, bob = self.person("ada"), self.person("bob")
        word = f"{self.prefix}zephyr"
        post = self.call(ada, "create_post", 201, body={"body": f"Minutes of the {word} meeting"})

        def found() -> Any:
            page = self.call(bob, "search_posts", 200, q=word)
            return page if page.items else None

        page = eventually(found, f"a search for {word}")
        assert [item.id for item in page.items] == [post.id], page

    def history(self) -> None:
        ada, post = self.person("ada"), self.ids["post"]
        before = self.call(ada, "get_post", 200, post_id=post).body
        edited = self.call(
            ada, "update_post", 200, post_id=post, body={"body": "The quarterly figures are in (revised)"}
        )
        assert edited.body.endswith("(revised)") and edited.edited_at, edited
        revisions = self.call(ada, "list_post_history", 200, post_id=post)
        assert [r.body for r in revisions.items] == [before], revisions

    def scim(self) -> None:
        hr = Person("hr", "", self.client_token, self.api.authenticated(self.base, self.client_token))
        user_name = f"{self.prefix}_provisioned"
        body = {
            "schemas": [CORE],
            "userName": user_name,
            "name": {"givenName": "Grace", "familyName": "Hopper"},
            "displayName": "Grace Hopper",
            "title": "Analyst",
            "active": True,
            "emails": [{"value": f"{user_name}@agency.example", "primary": True, "type": "work"}],
        }
        created = self.call(hr, "create_user", 201, body=body)
        assert created.user_name == user_name, created
        patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}
        patched = self.call(hr, "patch_user", 200, user_id=created.id, body=patch)
        assert (patched.id, patched.title) == (created.id, "Lead"), patched

    def webhook(self, receiver: Receiver) -> None:
        integrator = Person("hr", "", self.client_token, self.api.authenticated(self.base, self.client_token))
        body = {"url": receiver.url, "event_types": ["post.created"], "description": f"{self.prefix} flow"}
        hook = self.call(integrator, "create_webhook", 201, body=body)
        assert hook.secret.startswith("whsec_"), hook
        self.ids["webhook_secret"] = hook.secret

    def webhook_delivery(self, receiver: Receiver) -> None:
        secret, posts = self.ids["webhook_secret"], {str(p) for p in self.ids["organisation_posts"]}
        event = eventually(
            lambda: receiver.event_about(secret, "post.created", posts), "a signed post.created"
        )
        assert event["data"]["author_id"] == str(self.person("ada").persona_id), event

    # -- helpers -----------------------------------------------------------------------------

    def _try(self, who: Person, operation_id: str, status: int, **kwargs: Any) -> Any:
        """The answer, or None while it is not yet ``status`` (a replica still catching up)."""
        try:
            return self.call(who, operation_id, status, **kwargs)
        except UnexpectedStatus:
            return None

    def _two_pages(
        self, who: Person, operation_id: str, expected: set[Any], params: dict[str, Any], limit: int = 2
    ) -> set[Any]:
        """The ids of a timeline's first two pages (of ``limit`` items), once the first holds
        the newest of ``expected``; the pages must not overlap."""

        def first() -> Any:
            page = self.call(who, operation_id, 200, limit=limit, **params)
            ids = {item.id for item in page.items}
            return page if page.next_cursor and (not expected or ids & expected) else None

        page = eventually(first, f"{operation_id}'s first page")
        second = self.call(who, operation_id, 200, limit=limit, cursor=page.next_cursor, **params)
        one, two = [item.id for item in page.items], [item.id for item in second.items]
        assert len(one) == limit and two, (one, two)
        assert not set(one) & set(two), f"the pages overlap: {one} {two}"
        return set(one) | set(two)


def run(api: Generated, base: str, log: Path, client_token: str) -> Steps:
    """Runs the flow against the suite at ``base``; returns the steps' results."""
    flow = Flow(api, base, log, client_token)
    steps = Steps("python")
    with Receiver() as receiver:
        steps.run("webhook", lambda: flow.webhook(receiver))
        steps.run("register", flow.register)
        steps.run("token", flow.sign_in, needs=("register",))
        steps.run("personas", flow.personas, needs=("token",))
        steps.run("group", flow.group, needs=("personas",))
        steps.run("join", flow.join, needs=("group",))
        steps.run("post", flow.post, needs=("join",))
        steps.run("comment", flow.comment, needs=("post",))
        steps.run("react", flow.react, needs=("post",))
        steps.run("follow", flow.follow, needs=("personas",))
        steps.run("timelines", flow.timelines, needs=("post",))
        steps.run("notifications", flow.notifications, needs=("comment",))
        steps.run("search", flow.search, needs=("personas",))
        steps.run("history", flow.history, needs=("post",))
        steps.run("scim", flow.scim)
        steps.run("webhook-delivery", lambda: flow.webhook_delivery(receiver), needs=("webhook", "timelines"))
    return steps
