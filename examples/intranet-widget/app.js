// A plain-JS app of the govsocial gateway (decision 0035): signs a person in with the OAuth2
// authorization-code flow and PKCE on the agency's own pages (this page never sees a password),
// stays signed in by refreshing its token, shows the home timeline and keeps it live through
// the event stream. No build step, no framework. Tokens live in this page's memory only; the
// one thing stored is the PKCE verifier and state, in sessionStorage, across the redirect.
"use strict";

const PAGE_SIZE = 20;
const SCOPE = "read write";
const PENDING_KEY = "govsocial-widget-pending-sign-in"; // sessionStorage, across the redirect only
const REFRESH_AT = 0.8; // refresh the access token at 80% of its lifetime
const NO_ID = "0".repeat(32); // a stream position before everything
const STREAM_RETRY_MS = [1000, 2000, 5000, 10000, 30000]; // after errors, one after the other
const REFRESH_RETRY_MS = 5000; // when the gateway did not answer a refresh
const ENDED = "Your session has ended; please sign in again.";
const AUTHORIZATION_ERRORS = {
  access_denied: "You chose not to let this page sign in.",
  invalid_scope: "This app may not ask for what it asked for; tell the administrator.",
};

const state = {
  gateway: "",
  clientId: "",
  session: 0, // a new number at each sign-in and sign-out: late answers of an old one are dropped
  token: null,
  refreshToken: null,
  refreshAt: 0, // when (Date.now()) the access token is refreshed
  refreshTimer: null,
  refreshing: null, // the refresh under way: one at a time, since refresh tokens rotate
  nextCursor: null,
  shown: new Set(), // ids of the posts on the page
  liveDuringLoad: null, // posts the stream brings while the first page is (re)loaded
  stream: null,
  lastEventId: null, // where the stream resumes
  streamTimer: null,
  streamFailures: 0,
};

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message || "";
}

// -- PKCE (RFC 7636) ------------------------------------------------------------------------

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// 32 random bytes: 43 characters of base64url, the shortest verifier RFC 7636 allows.
function randomValue() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

// The address the agency's page sends the person back to: this page, without its query. The
// administrator registers exactly this (see README.md).
function redirectUri() {
  return window.location.origin + window.location.pathname;
}

// -- talking to the gateway -----------------------------------------------------------------

// Errors from the gateway are RFC 9457 problem+json (OAuth errors carry error_description).
async function problemMessage(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.error_description || problem.title || `HTTP ${response.status}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

async function failure(response) {
  const retry = response.headers.get("Retry-After");
  const message = await problemMessage(response);
  return new Error(retry ? `${message} (retry in ${retry} s)` : message);
}

function send(path, options, token) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(state.gateway + path, { ...options, headers, credentials: "omit" });
}

// A call with the access token. A 401 means the token ended early (a sleeping laptop delays
// timers): refresh once and try again; when the refresh is refused, the session is over.
async function api(path, options = {}) {
  const used = state.token;
  if (!used) throw new Error("You are signed out.");
  let response = await send(path, options, used);
  if (response.status === 401) {
    if (state.token === used) await refreshOrSignOut();
    if (!state.token) throw new Error("You are signed out.");
    response = await send(path, options, state.token);
    if (response.status === 401) {
      signOut(ENDED);
      throw new Error(ENDED);
    }
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// The token endpoint; an error it answers with 400 or 401 is ``refused`` (the grant is over),
// unlike a network failure or a 429, which a later try may get past.
async function tokenRequest(fields) {
  const body = new URLSearchParams(fields);
  const response = await send("/api/v1/auth/token", { method: "POST", body });
  if (!response.ok) {
    const error = await failure(response);
    error.refused = response.status === 400 || response.status === 401;
    throw error;
  }
  return response.json();
}

// -- signing in: to the agency's page and back ----------------------------------------------

async function issuerOf(gateway) {
  let response;
  try {
    response = await fetch(`${gateway}/.well-known/oauth-authorization-server`, { credentials: "omit" });
  } catch (_) {
    throw new Error(`${gateway} did not answer: is it the gateway, and does it allow this page (CORS)?`);
  }
  if (!response.ok) throw new Error(`${gateway} does not offer sign-in for apps (${response.status}).`);
  const metadata = await response.json();
  if (!(metadata.code_challenge_methods_supported || []).includes("S256")) {
    throw new Error(`${gateway} does not offer sign-in with PKCE.`);
  }
  // RFC 9207: the answer names its issuer; checked on the way back (a mix-up defence).
  return metadata.authorization_response_iss_parameter_supported ? metadata.issuer : null;
}

async function startSignIn(event) {
  event.preventDefault();
  showError("");
  const gateway = $("gateway").value.trim().replace(/\/+$/, "");
  const clientId = $("client-id").value.trim();
  try {
    const issuer = await issuerOf(gateway);
    const pending = {
      gateway,
      clientId,
      issuer,
      redirectUri: redirectUri(),
      state: randomValue(),
      verifier: randomValue(),
    };
    const query = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: pending.redirectUri,
      scope: SCOPE,
      state: pending.state,
      code_challenge: await challengeOf(pending.verifier),
      code_challenge_method: "S256",
    });
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    window.location.assign(`${gateway}/oauth/authorize?${query}`);
  } catch (error) {
    showError(error.message);
  }
}

// The sign-in this page started, read once and forgotten.
function takePending() {
  const text = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  try {
    return text ? JSON.parse(text) : null;
  } catch (_) {
    return null;
  }
}

// Back from the agency's page with ?code&state&iss (or ?error&state): the state must be the one
// this page made, the code is exchanged with the verifier, and the address bar forgets both.
async function finishSignIn(params) {
  const pending = takePending();
  const config = new URLSearchParams();
  if (pending) {
    config.set("gateway", pending.gateway);
    config.set("client_id", pending.clientId);
    $("gateway").value = pending.gateway;
    $("client-id").value = pending.clientId;
  }
  window.history.replaceState(null, "", `${window.location.pathname}${pending ? "?" + config : ""}`);
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("This page did not ask for that sign-in; please sign in again.");
  }
  if (params.has("error")) {
    const error = params.get("error");
    const described = AUTHORIZATION_ERRORS[error] || params.get("error_description");
    throw new Error(described || `Sign-in failed (${error}).`);
  }
  if (pending.issuer && params.get("iss") !== pending.issuer) {
    throw new Error("The answer did not come from this gateway's sign-in; please sign in again.");
  }
  state.gateway = pending.gateway;
  state.clientId = pending.clientId;
  const tokens = await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: pending.redirectUri,
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  state.session += 1;
  keepTokens(tokens);
  await showSignedIn(tokens);
}

// -- staying signed in -----------------------------------------------------------------------

function keepTokens(tokens) {
  state.token = tokens.access_token;
  state.refreshToken = tokens.refresh_token || null; // a new one each time: the old one is spent
  const delay = tokens.expires_in * REFRESH_AT * 1000;
  state.refreshAt = Date.now() + delay;
  refreshAfter(delay);
}

function refreshAfter(delay) {
  clearTimeout(state.refreshTimer);
  const session = state.session;
  state.refreshTimer = setTimeout(() => {
    if (session !== state.session) return;
    refreshOrSignOut().catch(() => {
      if (session === state.session) refreshAfter(REFRESH_RETRY_MS); // not refused: try again
    });
  }, delay);
}

function refreshTokens() {
  if (!state.refreshing) {
    const session = state.session;
    state.refreshing = tokenRequest({
      grant_type: "refresh_token",
      refresh_token: state.refreshToken || "",
      client_id: state.clientId,
    })
      .then((tokens) => {
        if (session === state.session) keepTokens(tokens);
      })
      .finally(() => {
        state.refreshing = null;
      });
  }
  return state.refreshing;
}

// A refused refresh ends the session here too; a failure to reach the gateway does not.
async function refreshOrSignOut() {
  try {
    await refreshTokens();
  } catch (error) {
    if (!error.refused) throw error;
    signOut(ENDED);
    throw new Error(ENDED);
  }
}

async function showSignedIn(tokens) {
  const me = await api("/api/v1/me");
  const persona = [me.professional, me.personal].find((p) => p && p.id === tokens.persona_id) || {};
  $("who").textContent = persona.display_name || (persona.handle ? "@" + persona.handle : "someone");
  $("context").textContent = tokens.context || me.context;
  $("login").hidden = true;
  $("signed-in").hidden = false;
  const page = await loadTimeline(true);
  state.lastEventId = page ? await startPosition(page).catch(() => null) : null;
  openStream();
}

function signOut(message) {
  const refreshToken = state.refreshToken;
  if (refreshToken) {
    // RFC 7009: the refresh token and its family end now; whatever the answer, this page forgets.
    const body = new URLSearchParams({ token: refreshToken, client_id: state.clientId });
    send("/api/v1/auth/revoke", { method: "POST", body }).catch(() => {});
  }
  state.session += 1;
  closeStream();
  clearTimeout(state.refreshTimer);
  clearTimeout(state.streamTimer);
  Object.assign(state, { token: null, refreshToken: null, refreshing: null, nextCursor: null });
  state.lastEventId = null;
  state.shown.clear();
  $("timeline").replaceChildren();
  $("notifications").replaceChildren();
  $("live").textContent = "";
  $("empty").hidden = true;
  $("signed-in").hidden = true;
  $("login").hidden = false;
  showError(message || "");
}

// -- the timeline ----------------------------------------------------------------------------

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
  for (const media of post.media || []) item.append(renderMedia(media));
  return item;
}

// A post's file: an image shown (its preview), anything else a download link. An <img> cannot
// send the bearer token, so the media's answer gives short-lived signed links to use instead.
function renderMedia(media) {
  const holder = document.createElement(media.media_type === "image" ? "figure" : "p");
  holder.className = "media";
  holder.dataset.mediaId = media.id;
  api(`/api/v1/media/${encodeURIComponent(media.id)}`)
    .then((found) => {
      const link = new URL(found.preview_url || found.url, state.gateway).href;
      if (media.media_type === "image") {
        const image = document.createElement("img");
        image.alt = media.description || "";
        image.src = link;
        if (media.width && media.height) {
          image.width = Math.min(media.width, 320);
          image.height = Math.round((image.width * media.height) / media.width);
        }
        holder.append(image);
      } else {
        const anchor = document.createElement("a");
        anchor.href = new URL(found.url, state.gateway).href;
        anchor.rel = "noopener";
        anchor.textContent = media.filename || "Download the file";
        holder.append(anchor);
      }
    })
    .catch(() => {
      holder.textContent = "(this file cannot be shown)";
    });
  return holder;
}

function showOnTop(post) {
  if (state.shown.has(post.id)) return;
  state.shown.add(post.id);
  $("timeline").prepend(renderPost(post));
  $("empty").hidden = true;
}

// Shows a page of the timeline (the first one, or the next); returns it, or null on failure.
async function loadTimeline(fromStart) {
  showError("");
  const session = state.session;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (!fromStart && state.nextCursor) query.set("cursor", state.nextCursor);
  const live = fromStart ? [] : null;
  if (fromStart) state.liveDuringLoad = live;
  try {
    const page = await api(`/api/v1/timelines/home?${query}`);
    if (session !== state.session) return null;
    const timeline = $("timeline");
    if (fromStart) {
      timeline.replaceChildren();
      state.shown.clear();
    }
    for (const post of page.items) {
      if (state.shown.has(post.id)) continue;
      state.shown.add(post.id);
      timeline.append(renderPost(post));
    }
    if (live) live.forEach(showOnTop); // oldest first, so the newest ends on top
    $("empty").hidden = state.shown.size > 0;
    state.nextCursor = page.next_cursor || null;
    $("more").hidden = !state.nextCursor;
    return page;
  } catch (error) {
    if (session === state.session) showError(error.message);
    return null;
  } finally {
    if (state.liveDuringLoad === live) state.liveDuringLoad = null;
  }
}

// -- live updates: the event stream, opened with a one-time ticket ---------------------------

function describeNotification(note) {
  const who = note.actor ? note.actor.display_name || "@" + note.actor.handle : "Someone";
  const what = { mention: "mentioned you", comment: "commented on your post", reply: "replied to you" };
  return `${who} ${what[note.kind] || "did something"}.`;
}

function showNotification(note) {
  const list = $("notifications");
  const item = document.createElement("li");
  item.textContent = describeNotification(note);
  list.prepend(item);
  while (list.children.length > 5) list.lastElementChild.remove();
}

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

function remember(event) {
  if (event.lastEventId) state.lastEventId = event.lastEventId;
}

const hex = (id) => id.replace(/-/g, "").toLowerCase();
const newest = (items) => items.map((item) => hex(item.id)).sort().pop() || NO_ID;

// Where the first stream starts: after the newest post the page shows and the newest
// notification, written as an event's id is (docs/stream.md: `<last post id>.<last
// notification id>`). So what comes between reading the page and opening the stream, or before
// any event came and the stream had to be reopened, still arrives.
async function startPosition(page) {
  const notes = await api("/api/v1/notifications?limit=1"); // newest first
  return `${newest(page.items)}.${newest(notes.items)}`;
}

// Reopens after ``delay``: a new ticket (with a fresh token when it is due) from where the last
// event left off, so nothing is lost in between.
function reopenStream(delay) {
  closeStream();
  clearTimeout(state.streamTimer);
  const session = state.session;
  state.streamTimer = setTimeout(() => {
    if (session === state.session) openStream();
  }, delay);
}

function retryDelay() {
  const delay = STREAM_RETRY_MS[Math.min(state.streamFailures, STREAM_RETRY_MS.length - 1)];
  state.streamFailures += 1;
  return delay;
}

// Opens the stream from ``state.lastEventId``. EventSource cannot send a header, so a
// single-use ticket goes in the address; once it is spent, the browser's own retry would be
// refused, so every end or error reopens here with a new ticket.
async function openStream() {
  closeStream();
  const session = state.session;
  let ticket;
  try {
    if (Date.now() >= state.refreshAt) await refreshOrSignOut();
    ticket = (await api("/api/v1/stream/tickets", { method: "POST" })).ticket;
  } catch (_) {
    if (session === state.session && state.token) {
      $("live").textContent = "Live updates paused; trying again.";
      reopenStream(retryDelay());
    }
    return;
  }
  if (session !== state.session) return;
  const query = new URLSearchParams({ ticket });
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  const source = new EventSource(`${state.gateway}/api/v1/stream?${query}`);
  state.stream = source;
  const onPost = (event) => {
    remember(event);
    const post = JSON.parse(event.data);
    if (state.liveDuringLoad) state.liveDuringLoad.push(post);
    showOnTop(post);
  };
  source.addEventListener("post", onPost);
  source.addEventListener("notification", (event) => {
    remember(event);
    showNotification(JSON.parse(event.data));
  });
  // The token behind the stream expired, or the stream reached its longest: reconnect at once.
  source.addEventListener("reconnect", () => reopenStream(0));
  source.addEventListener("open", () => {
    state.streamFailures = 0;
    $("live").textContent = "Live: new posts appear at the top.";
  });
  source.addEventListener("error", () => {
    if (state.stream !== source) return;
    $("live").textContent = "Live updates interrupted; reconnecting.";
    reopenStream(retryDelay());
  });
}

// -- the page --------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(window.location.search);
  $("gateway").value = params.get("gateway") || "http://127.0.0.1:8000";
  $("client-id").value = params.get("client_id") || "";
  $("login").addEventListener("submit", startSignIn);
  $("refresh").addEventListener("click", () => loadTimeline(true));
  $("more").addEventListener("click", () => loadTimeline(false));
  $("sign-out").addEventListener("click", () => signOut());
  if (params.has("code") || params.has("error") || params.has("state")) {
    finishSignIn(params).catch((error) => {
      signOut(error.message);
    });
  }
});
