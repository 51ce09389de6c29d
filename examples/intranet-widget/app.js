// A plain-JS client of the govsocial gateway: signs in with the OAuth2 password grant and shows
// the home timeline. No build step, no framework, no storage: the token lives in this page only.
"use strict";

const state = { gateway: "", token: null, nextCursor: null };

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message || "";
}

// Errors from the gateway are RFC 9457 problem+json; anything else gets a generic message.
async function problemMessage(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.error_description || problem.title || `HTTP ${response.status}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(state.gateway + path, { ...options, headers, credentials: "omit" });
  if (response.status === 401 && state.token) {
    signOut();
    throw new Error("Your session has ended; please sign in again.");
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const message = await problemMessage(response);
    throw new Error(retry ? `${message} (retry in ${retry} s)` : message);
  }
  return response.json();
}

async function signIn(event) {
  event.preventDefault();
  showError("");
  state.gateway = $("gateway").value.trim().replace(/\/+$/, "");
  const form = new URLSearchParams({
    grant_type: "password",
    username: $("email").value.trim(),
    password: $("password").value,
  });
  try {
    const token = await api("/api/v1/auth/token", { method: "POST", body: form });
    state.token = token.access_token;
    $("password").value = "";
    const me = await api("/api/v1/me");
    const persona = [me.professional, me.personal].find((p) => p && p.id === token.persona_id) || {};
    $("who").textContent = persona.display_name || persona.handle || $("email").value;
    $("login").hidden = true;
    $("signed-in").hidden = false;
    await loadTimeline(true);
  } catch (error) {
    state.token = null;
    showError(error.message);
  }
}

function renderPost(post) {
  const item = document.createElement("article");
  item.className = "post";
  item.dataset.postId = post.id;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = post.author ? post.author.display_name || "@" + post.author.handle : "someone";
  const when = document.createElement("time");
  when.className = "when";
  when.dateTime = post.created_at;
  when.textContent = new Date(post.created_at).toLocaleString();
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = post.body; // text, never HTML: posts may contain markup
  item.append(who, when, body);
  return item;
}

async function loadTimeline(fromStart) {
  showError("");
  const query = new URLSearchParams({ limit: "20" });
  if (!fromStart && state.nextCursor) query.set("cursor", state.nextCursor);
  try {
    const page = await api(`/api/v1/timelines/home?${query}`);
    const timeline = $("timeline");
    if (fromStart) timeline.replaceChildren();
    for (const post of page.items) timeline.append(renderPost(post));
    if (fromStart && page.items.length === 0) timeline.textContent = "Nothing here yet.";
    state.nextCursor = page.next_cursor || null;
    $("more").hidden = !state.nextCursor;
  } catch (error) {
    showError(error.message);
  }
}

function signOut() {
  state.token = null;
  state.nextCursor = null;
  $("timeline").replaceChildren();
  $("signed-in").hidden = true;
  $("login").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const fromQuery = new URLSearchParams(window.location.search).get("gateway");
  $("gateway").value = fromQuery || "http://127.0.0.1:8000";
  $("login").addEventListener("submit", signIn);
  $("refresh").addEventListener("click", () => loadTimeline(true));
  $("more").addEventListener("click", () => loadTimeline(false));
  $("sign-out").addEventListener("click", signOut);
});
