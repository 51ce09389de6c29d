// The whole flow of ../python_flow.py through the SDK that @hey-api/openapi-ts generates from
// openapi.json with its fetch client: one function per operation, named by its operationId,
// each typed by the generated types; no schema name appears here.

import { type Client, createClient, createConfig } from "../gen/hey-api/client/index.js";
import {
  addReaction,
  approveJoinRequest,
  createAccount,
  createComment,
  createGroup,
  createJoinRequest,
  createPersonalPersona,
  createPost,
  createToken,
  createUser,
  createWebhook,
  searchPosts,
  followPersona,
  getGroup,
  getGroupTimeline,
  getHomeTimeline,
  getMe,
  getPersona,
  getPost,
  listComments,
  listFollowing,
  listMembers,
  listNotifications,
  listPostHistory,
  markNotificationsRead,
  patchUser,
  updatePost,
  verifyAccount,
} from "../gen/hey-api/index.js";
import { CORE, PASSWORD, PATCH_OP, Receiver, Steps, check, env, eventually, mailedToken } from "./common.js";

const PREFIX = "hey";

/** The answer's body when it has `status`; a failure naming the call otherwise. */
async function ok<T>(call: Promise<{ data?: T; error?: unknown; response?: Response }>, status: number): Promise<T> {
  const { data, error, response } = await call;
  check(response !== undefined, "no response");
  const what = `${response.url.replace(env.base, "")}`;
  check(response.status === status, `${what}: ${response.status} instead of ${status}: ${JSON.stringify(error ?? data)}`);
  check(data !== undefined && data !== null, `${what}: no body`);
  return data;
}

/** The answer's body once it has `status` (a replica catching up answers otherwise first). */
async function once<T>(call: () => Promise<{ data?: T; error?: unknown; response?: Response }>, status: number): Promise<T | undefined> {
  const { data, response } = await call();
  return response?.status === status ? data : undefined;
}

function client(token?: string): Client {
  return createClient(createConfig({ baseUrl: env.base, headers: token ? { Authorization: `Bearer ${token}` } : {} }));
}

interface Person {
  handle: string;
  email: string;
  client: Client;
  personaId: string;
}

const anonymous = client();
const integrator = client(env.clientToken);
const ada: Person = { handle: `${PREFIX}_ada`, email: `${PREFIX}_ada@agency.example`, client: anonymous, personaId: "" };
const bob: Person = { handle: `${PREFIX}_bob`, email: `${PREFIX}_bob@agency.example`, client: anonymous, personaId: "" };
const ids = { group: "", post: "", secret: "", organisationPosts: new Set<string>() };

async function register(): Promise<void> {
  for (const [who, display] of [[ada, "Ada Lovelace"], [bob, "Bob Jensen"]] as const) {
    const body = { email: who.email, password: PASSWORD, handle: who.handle, display_name: display };
    await ok(createAccount({ client: anonymous, body }), 202);
    const token = await mailedToken(who.handle);
    await ok(verifyAccount({ client: anonymous, body: { token, password: PASSWORD } }), 200);
  }
}

async function signIn(): Promise<void> {
  for (const who of [ada, bob]) {
    const body = { grant_type: "password" as const, username: who.email, password: PASSWORD };
    const token = await ok(createToken({ client: anonymous, body }), 200);
    check(token.access_token.length > 0, "no access token");
    who.client = client(token.access_token);
  }
}

async function personas(): Promise<void> {
  for (const who of [ada, bob]) {
    const me = await ok(getMe({ client: who.client }), 200);
    check(me.professional?.handle === who.handle, `me: ${JSON.stringify(me)}`);
    who.personaId = me.professional.id;
  }
  const handle = `${ada.handle}_home`;
  const personal = await ok(createPersonalPersona({ client: ada.client, body: { handle, display_name: "Ada" } }), 201);
  check(personal.handle === handle && personal.kind === "personal", `personal: ${JSON.stringify(personal)}`);
  const seen = await ok(getPersona({ client: ada.client, path: { persona_id: bob.personaId } }), 200);
  check(seen.id === bob.personaId && seen.handle === bob.handle, `persona: ${JSON.stringify(seen)}`);
}

async function group(): Promise<void> {
  const objective = "Share what the analysts learn";
  const body = {
    name: "Analysts",
    handle: `${PREFIX}_analysts`,
    purpose: "A place for analysts",
    visibility: "closed" as const,
    charter: { objective, audience: "Analysts of every team", review_at: "2027-06-30" },
  };
  const created = await ok(createGroup({ client: ada.client, body }), 201);
  const read = await ok(getGroup({ client: ada.client, path: { group_id: created.id } }), 200);
  check(read.id === created.id && read.charter?.objective === objective, `group: ${JSON.stringify(read)}`);
  ids.group = created.id;
}

async function join(): Promise<void> {
  const path = { group_id: ids.group };
  const asked = await ok(createJoinRequest({ client: bob.client, path, body: { message: "May I join?" } }), 201);
  check(asked.persona_id === bob.personaId && asked.status === "pending", `join request: ${JSON.stringify(asked)}`);
  await ok(approveJoinRequest({ client: ada.client, path: { group_id: ids.group, persona_id: bob.personaId } }), 201);
  const members = await ok(listMembers({ client: ada.client, path }), 200);
  check(members.items.some((m) => m.persona_id === bob.personaId), `members: ${JSON.stringify(members)}`);
}

async function post(): Promise<void> {
  const text = "The quarterly figures are in";
  const body = { body: text, audience: "group" as const, group_id: ids.group };
  const created = await eventually(() => once(() => createPost({ client: ada.client, body }), 201), "feed learns of the group");
  check(created.body === text && created.group_id === ids.group, `post: ${JSON.stringify(created)}`);
  const path = { post_id: created.id };
  const read = await eventually(() => once(() => getPost({ client: bob.client, path }), 200), "bob sees the group's post");
  check(read.id === created.id && read.body === text, `post: ${JSON.stringify(read)}`);
  ids.post = created.id;
}

async function comment(): Promise<void> {
  const text = "Thanks, very useful";
  const path = { post_id: ids.post };
  const created = await ok(createComment({ client: bob.client, path, body: { body: text } }), 201);
  const listed = await ok(listComments({ client: bob.client, path }), 200);
  check(JSON.stringify(listed.items.map((c) => [c.id, c.body])) === JSON.stringify([[created.id, text]]), `comments: ${JSON.stringify(listed)}`);
}

async function react(): Promise<void> {
  const reacted = await ok(addReaction({ client: bob.client, path: { post_id: ids.post, kind: "like" } }), 201);
  check(reacted.id === ids.post && reacted.reactions.mine.includes("like"), `reacted: ${JSON.stringify(reacted)}`);
}

async function follow(): Promise<void> {
  const followed = await ok(followPersona({ client: bob.client, path: { persona_id: ada.personaId } }), 201);
  check(followed.persona_id === ada.personaId, `follow: ${JSON.stringify(followed)}`);
  const following = await ok(listFollowing({ client: bob.client }), 200);
  check(following.items.some((f) => f.persona_id === ada.personaId), `following: ${JSON.stringify(following)}`);
}

/** The ids of a timeline's first two pages, once the first holds one of `expected`. */
async function twoPages(
  read: (query: { limit: number; cursor?: string }) => Promise<{ items: { id: string }[]; next_cursor?: string | null }>,
  expected: Set<string>,
  limit: number,
): Promise<Set<string>> {
  const first = await eventually(async () => {
    const page = await read({ limit });
    const hit = expected.size === 0 || page.items.some((item) => expected.has(item.id));
    return page.next_cursor && hit ? { ...page, next_cursor: page.next_cursor } : undefined;
  }, "a timeline's first page");
  const second = await read({ limit, cursor: first.next_cursor });
  const one = first.items.map((item) => item.id);
  const two = second.items.map((item) => item.id);
  check(one.length === limit && two.length > 0, `pages: ${one} / ${two}`);
  check(!one.some((id) => two.includes(id)), `the pages overlap: ${one} / ${two}`);
  return new Set([...one, ...two]);
}

async function timelines(): Promise<void> {
  for (const n of [0, 1, 2]) {
    const created = await ok(createPost({ client: ada.client, body: { body: `Note ${n} for the home page` } }), 201);
    ids.organisationPosts.add(created.id);
  }
  const home = await twoPages((query) => ok(getHomeTimeline({ client: ada.client, query }), 200), ids.organisationPosts, 2);
  check([...ids.organisationPosts].every((id) => home.has(id)), `home: ${[...home]}`);
  const second = { body: "A second note for the group", audience: "group" as const, group_id: ids.group };
  await ok(createPost({ client: ada.client, body: second }), 201);
  const path = { group_id: ids.group };
  const inGroup = await twoPages((query) => ok(getGroupTimeline({ client: ada.client, path, query }), 200), new Set(), 1);
  check(inGroup.has(ids.post), `group timeline: ${[...inGroup]}`);
}

async function notifications(): Promise<void> {
  const query = { unread: true };
  const unread = await eventually(async () => {
    const page = await ok(listNotifications({ client: ada.client, query }), 200);
    return page.items.some((n) => n.actor.id === bob.personaId) ? page : undefined;
  }, "ada's notification of bob's comment");
  check(unread.items.every((n) => n.post_id === ids.post), `notifications: ${JSON.stringify(unread)}`);
  const marked = await ok(markNotificationsRead({ client: ada.client, body: { all: true } }), 200);
  check(marked.marked >= unread.items.length, `marked: ${JSON.stringify(marked)}`);
  const after = await ok(listNotifications({ client: ada.client, query }), 200);
  check(after.items.length === 0, `still unread: ${JSON.stringify(after)}`);
}

async function search(): Promise<void> {
  const word = `${PREFIX}zephyr`;
  const created = await ok(createPost({ client: ada.client, body: { body: `Minutes of the ${word} meeting` } }), 201);
  const page = await eventually(async () => {
    const found = await ok(searchPosts({ client: bob.client, query: { q: word } }), 200);
    return found.items.length > 0 ? found : undefined;
  }, `a search for ${word}`);
  check(page.items.length === 1 && page.items[0]?.id === created.id, `search: ${JSON.stringify(page)}`);
}

async function history(): Promise<void> {
  const path = { post_id: ids.post };
  const before = await ok(getPost({ client: ada.client, path }), 200);
  const edited = await ok(updatePost({ client: ada.client, path, body: { body: `${before.body} (revised)` } }), 200);
  check(edited.body.endsWith("(revised)") && edited.edited_at, `edited: ${JSON.stringify(edited)}`);
  const revisions = await ok(listPostHistory({ client: ada.client, path }), 200);
  check(revisions.items.length === 1 && revisions.items[0]?.body === before.body, `history: ${JSON.stringify(revisions)}`);
}

async function scim(): Promise<void> {
  const userName = `${PREFIX}_provisioned`;
  const body = {
    schemas: [CORE],
    userName,
    name: { givenName: "Grace", familyName: "Hopper" },
    displayName: "Grace Hopper",
    title: "Analyst",
    active: true,
    emails: [{ value: `${userName}@agency.example`, primary: true, type: "work" }],
  };
  const created = await ok(createUser({ client: integrator, body }), 201);
  check(created.userName === userName, `created: ${JSON.stringify(created)}`);
  const patch = { schemas: [PATCH_OP] as Array<typeof PATCH_OP>, Operations: [{ op: "replace" as const, path: "title", value: "Lead" }] };
  const patched = await ok(patchUser({ client: integrator, path: { user_id: String(created.id) }, body: patch }), 200);
  check(patched.id === created.id && patched.title === "Lead", `patched: ${JSON.stringify(patched)}`);
}

async function webhook(receiver: Receiver): Promise<void> {
  const body = { url: receiver.url, event_types: ["post.created"], description: `${PREFIX} flow` };
  const hook = await ok(createWebhook({ client: integrator, body }), 201);
  check(hook.secret.startsWith("whsec_"), `webhook: ${JSON.stringify(hook)}`);
  ids.secret = hook.secret;
}

async function webhookDelivery(receiver: Receiver): Promise<void> {
  const event = await eventually(async () => receiver.eventAbout(ids.secret, "post.created", ids.organisationPosts), "a signed post.created");
  const data = event["data"] as Record<string, unknown>;
  check(data["author_id"] === ada.personaId, `event: ${JSON.stringify(event)}`);
}

const steps = new Steps("hey-api");
const receiver = new Receiver();
await receiver.start();
await steps.run("webhook", () => webhook(receiver));
await steps.run("register", register);
await steps.run("token", signIn, ["register"]);
await steps.run("personas", personas, ["token"]);
await steps.run("group", group, ["personas"]);
await steps.run("join", join, ["group"]);
await steps.run("post", post, ["join"]);
await steps.run("comment", comment, ["post"]);
await steps.run("react", react, ["post"]);
await steps.run("follow", follow, ["personas"]);
await steps.run("timelines", timelines, ["post"]);
await steps.run("notifications", notifications, ["comment"]);
await steps.run("search", search, ["personas"]);
await steps.run("history", history, ["post"]);
await steps.run("scim", scim);
await steps.run("webhook-delivery", () => webhookDelivery(receiver), ["webhook", "timelines"]);
receiver.stop();
process.exitCode = steps.failed ? 1 : 0;
