// The latticed console's page: renders /api/state, follows /api/events
// (the lattice's CloudEvents) and refreshes on each, and sends actions with
// the CSRF token the server put in the page. Plain DOM, no framework; every
// value goes in as text, never as HTML.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
let state = null;
let refreshTimer = null;
let refreshing = false;
let again = false;
let eventsSeen = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function short(key) { return key && key.length > 16 ? key.slice(0, 6) + "…" + key.slice(-6) : (key || ""); }
function keyCell(key) { return el("td", { class: "key", title: key || "" }, key || ""); }
function labels(m) {
  const td = el("td");
  for (const [k, v] of Object.entries(m || {}).sort()) td.append(el("span", { class: "label" }, k + "=" + v));
  return td;
}
function fill(id, rows) {
  const tb = document.querySelector("#" + id + " tbody");
  tb.replaceChildren(...rows);
}

function showOutcome(ok, text) {
  const box = document.getElementById("outcome");
  box.replaceChildren(el("div", { class: ok ? "ok" : "err", "data-ok": String(ok) }, text));
}

async function act(path, body) {
  let res, out;
  try {
    res = await fetch("/api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    out = await res.json();
  } catch (e) {
    showOutcome(false, path + ": " + e);
    return;
  }
  if (out.ok) showOutcome(true, out.message);
  else showOutcome(false, out.error || (path + ": HTTP " + res.status));
  scheduleRefresh(0);
}

function render() {
  const s = state;
  document.getElementById("errors").replaceChildren(...s.errors.map((e) => el("div", {}, e)));
  fill("hosts-table", s.hosts.map((h) => el("tr", { "data-host": h.id },
    keyCell(h.id), el("td", {}, h.friendly_name), el("td", {}, h.version),
    el("td", {}, h.uptime_human || (h.uptime_seconds + " s")), labels(h.labels))));

  const claims = new Map(s.claims.map((c) => [c.sub, c]));
  // One row per actor, with its instances on every host.
  const actors = new Map();
  for (const inv of s.inventories) {
    for (const a of inv.actors || []) {
      const row = actors.get(a.id) || { a, hosts: [] };
      row.hosts.push({ host: inv.host_id, count: (a.instances || []).length });
      actors.set(a.id, row);
    }
  }
  fill("actors-table", [...actors.values()].sort((x, y) => (x.a.name || "").localeCompare(y.a.name || "")).map(({ a, hosts }) => {
    const c = claims.get(a.id) || {};
    const per = el("td");
    const controls = el("td");
    for (const h of hosts) {
      per.append(el("div", { "data-host": h.host, class: "instances" }, short(h.host) + ": " + h.count));
      const count = el("input", { type: "number", min: "0", value: String(h.count), name: "count", "aria-label": "instances" });
      controls.append(el("form", {
        class: "scale",
        onsubmit: (ev) => { ev.preventDefault(); act("actors/scale", { host_id: h.host, actor_id: a.id, actor_ref: a.image_ref, count: Number(count.value) }); },
      }, count, el("button", { type: "submit", class: "scale-btn" }, "Scale"),
        el("button", { type: "button", class: "danger stop-btn", onclick: () => act("actors/stop", { host_id: h.host, actor_id: a.id }) }, "Stop")));
    }
    const caps = (c.caps || "").split(",").filter(Boolean);
    return el("tr", { "data-actor": a.id, "data-name": a.name || c.name || "" },
      el("td", {}, a.name || c.name || ""), keyCell(a.id), el("td", { class: "alias" }, c.call_alias || ""), per,
      el("td", {}, ...caps.map((x) => el("span", { class: "label" }, x)),
        c.iss ? el("div", { class: "key", title: c.iss }, "issuer " + short(c.iss)) : null,
        c.version || c.rev ? el("div", {}, "v" + (c.version || "") + " rev " + (c.rev || "")) : null),
      controls);
  }));

  const users = new Map((s.provider_users || []).map((u) => [u.provider_id + "/" + u.link_name, u]));
  const provRows = [];
  for (const inv of s.inventories) {
    for (const p of inv.providers || []) {
      const u = users.get(p.id + "/" + p.link_name) || {};
      const revoked = p.state === "revoked";
      provRows.push(el("tr", { "data-provider": p.id + "/" + p.link_name, "data-state": p.state || "" },
        el("td", {}, p.name), keyCell(p.id), el("td", {}, p.link_name), el("td", {}, p.contract_id),
        el("td", { class: "state state-" + (p.state || "unknown") }, p.state || "", p.exit_reason ? el("div", {}, p.exit_reason) : null),
        el("td", {}, String(p.restarts || 0)),
        el("td", { class: "key user", title: u.user || "" }, u.user || (p.revocation ? "shared: " + p.revocation : "")),
        el("td", { class: "expires" }, u.expires ? new Date(u.expires).toISOString() : (u.user ? "never" : "")),
        el("td", {}, el("button", {
          type: "button", class: "danger revoke-btn", disabled: revoked ? "disabled" : null,
          onclick: () => act("providers/revoke", { host_id: inv.host_id, provider_id: p.id, link_name: p.link_name }),
        }, "Revoke"))));
    }
  }
  fill("providers-table", provRows);

  fill("links-table", s.links.map((l) => el("tr", { "data-link": l.actor_id + "|" + l.contract_id + "|" + l.link_name },
    keyCell(l.actor_id), keyCell(l.provider_id), el("td", {}, l.contract_id), el("td", {}, l.link_name),
    el("td", {}, ...Object.entries(l.values || {}).sort().map(([k, v]) => el("span", { class: "label" }, k + "=" + v))),
    el("td", {}, el("button", {
      type: "button", class: "danger delete-link-btn",
      onclick: () => act("links/delete", { actor_id: l.actor_id, contract_id: l.contract_id, link_name: l.link_name }),
    }, "Delete")))));
  document.body.dataset.refreshed = s.refreshed;
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const res = await fetch("/api/state", { credentials: "same-origin" });
    if (res.ok) { state = await res.json(); render(); }
    else document.getElementById("errors").replaceChildren(el("div", {}, "state: HTTP " + res.status));
  } catch (e) {
    document.getElementById("errors").replaceChildren(el("div", {}, "state: " + e));
  } finally {
    refreshing = false;
    if (again) { again = false; scheduleRefresh(0); }
  }
}

function scheduleRefresh(ms) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, ms);
}

function follow() {
  const status = document.getElementById("feed-status");
  const feed = document.getElementById("event-feed");
  const es = new EventSource("/api/events");
  es.onopen = () => { status.textContent = "live"; status.className = "status live"; scheduleRefresh(0); };
  es.onerror = () => { status.textContent = "reconnecting…"; status.className = "status down"; };
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    const type = (ev.type || "").replace("com.wasmcloud.lattice.", "");
    eventsSeen++;
    feed.prepend(el("li", { "data-type": type },
      el("span", { class: "time" }, (ev.time || "").replace(/\.\d+/, "") + " "),
      el("span", { class: "type" }, type), " ", JSON.stringify(ev.data)));
    while (feed.children.length > 200) feed.lastChild.remove();
    if (type !== "host_heartbeat" && !type.startsWith("invocation_")) scheduleRefresh(150);
  };
}

document.getElementById("start-actor").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const host = state && state.hosts.length ? state.hosts[0].id : "";
  if (!host) { showOutcome(false, "no host answered: cannot start an actor"); return; }
  act("actors/start", { host_id: host, ref: f.get("ref"), count: Number(f.get("count") || 1) });
});

document.getElementById("put-link").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const values = {};
  for (const kv of String(f.get("values") || "").split(",")) {
    const i = kv.indexOf("=");
    if (i > 0) values[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  act("links/put", {
    actor_id: f.get("actor_id"), provider_id: f.get("provider_id"), contract_id: f.get("contract_id"),
    link_name: f.get("link_name") || "default", values,
  });
});

follow();
refresh();
