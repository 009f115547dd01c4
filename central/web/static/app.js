// Zastava operator console. Plain JavaScript served by central: no build step, no CDN.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const RANK = { guard: 0, operator: 1, admin: 2 };
const SEV = ["info", "low", "medium", "high", "critical"];
const FEED_MAX = 500; // rows kept in the feed; older ones are a page away
const state = {
  me: null, alerts: new Map(), order: [], selected: null, filters: {}, nextCursor: null,
  incidents: new Map(), selectedIncident: null, source: null, pending: [], frame: 0,
  config: null, zone: null, sound: false, audio: null,
};

// --- helpers -----------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c.nodeType ? c : String(c));
  return e;
}

async function api(path, { method = "GET", body = null, raw = false } = {}) {
  const opts = { method, headers: { "X-Requested-With": "zastava" }, credentials: "same-origin" };
  if (body !== null) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  if (r.status === 401 && path !== "/api/v1/login") { showLogin(); throw new Error("logged out"); }
  if (raw) return r;
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) { const e = new Error(typeof data === "object" ? detail(data) : data); e.status = r.status; e.data = data; throw e; }
  return data;
}

function detail(data) {
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map(d => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return JSON.stringify(data);
}

const fmtTime = t => t ? new Date(t).toLocaleString(undefined, { hour12: false }) : "—";
const clock = t => t ? new Date(t).toLocaleTimeString(undefined, { hour12: false }) : "—";
const ago = s => s === null || s === undefined ? "—" : s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
const may = role => state.me && RANK[state.me.role] >= RANK[role];
const alertState = a => a.verdict === "false_alarm" ? "false_alarm" : a.acknowledged ? "acknowledged" : "open";
const stateLabel = s => ({ open: "open", acknowledged: "acknowledged", false_alarm: "false alarm" })[s];

// --- login -------------------------------------------------------------------------------------

function showLogin() {
  if (state.source) { state.source.close(); state.source = null; }
  $("#app").hidden = true; $("#login").hidden = false; $("#login-user").focus();
}

async function start() {
  try { state.me = await api("/api/v1/me"); } catch { return showLogin(); }
  $("#login").hidden = true; $("#app").hidden = false;
  $("#whoami").textContent = `${state.me.username} (${state.me.role})`;
  for (const b of $$("[data-role]")) b.hidden = !may(b.dataset.role);
  await loadAlerts();
  connectFeed();
  loadIncidents();
  setInterval(() => { if (!$("#view-nodes").hidden) loadNodes(); }, 3000);
  setInterval(() => { if (!$("#view-plan").hidden) loadPlan(); }, 10000);
}

$("#login-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("/api/v1/login", { method: "POST", body: { username: $("#login-user").value, password: $("#login-pass").value } });
    $("#login-pass").value = "";
    start();
  } catch (e) { $("#login-error").textContent = e.message; }
});

$("#logout").addEventListener("click", async () => { try { await api("/api/v1/logout", { method: "POST" }); } finally { showLogin(); } });

// --- tabs --------------------------------------------------------------------------------------

for (const b of $$("#tabs button")) b.addEventListener("click", () => showView(b.dataset.view));

function showView(name) {
  for (const b of $$("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const v of $$(".view")) v.hidden = v.id !== `view-${name}`;
  ({ nodes: loadNodes, plan: loadPlan, audit: loadAudit, users: loadUsers, incidents: loadIncidents })[name]?.();
}

// --- alerts feed -------------------------------------------------------------------------------

function readFilters() {
  const f = {};
  for (const k of ["site", "node", "camera", "class", "rule", "severity", "state"]) {
    const v = $(`#f-${k}`).value.trim();
    if (v) f[k] = v;
  }
  return f;
}

function matches(a, f) {
  for (const k of ["site", "node", "camera", "class", "rule"]) if (f[k] && a[k] !== f[k]) return false;
  if (f.severity && !f.severity.split(",").includes(a.severity)) return false;
  if (f.state && alertState(a) !== f.state) return false;
  return true;
}

let filterTimer = 0;
$("#filters").addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(loadAlerts, 250); });
$("#filters").addEventListener("submit", ev => ev.preventDefault());

async function loadAlerts() {
  state.filters = readFilters();
  const q = new URLSearchParams({ limit: 100, ...state.filters });
  const page = await api(`/api/v1/alerts?${q}`);
  state.alerts.clear();
  state.order = [];
  for (const a of page.alerts) { state.alerts.set(a.id, a); state.order.push(a.id); }
  state.nextCursor = page.next_cursor;
  renderFeed(new Set());
  remember(page.alerts);
}

async function loadMore() {
  if (!state.nextCursor) return;
  const q = new URLSearchParams({ limit: 100, cursor: state.nextCursor, ...state.filters });
  const page = await api(`/api/v1/alerts?${q}`);
  for (const a of page.alerts) if (!state.alerts.has(a.id)) { state.alerts.set(a.id, a); state.order.push(a.id); }
  state.nextCursor = page.next_cursor;
  renderFeed(new Set());
}

const seen = { site: new Set(), node: new Set(), camera: new Set(), class: new Set(), rule: new Set() };
function remember(alerts) {
  for (const a of alerts) for (const k of Object.keys(seen)) {
    if (a[k] && !seen[k].has(a[k])) { seen[k].add(a[k]); $(`#dl-${k}`).append(el("option", { value: a[k] })); }
  }
}

function row(a, fresh) {
  const s = alertState(a);
  const tr = el("tr", { class: `alert sev-${a.severity}${s !== "open" ? " done" : ""}${fresh ? " fresh" : ""}${a.id === state.selected ? " selected" : ""}`, "data-id": a.id, "data-state": s },
    el("td", { text: clock(a.time), title: fmtTime(a.time) }),
    el("td", {}, el("span", { class: `sev ${a.severity}`, text: a.severity })),
    el("td", { text: `${a.site}/${a.node} · ${a.camera}` }),
    el("td", { text: a.rule }),
    el("td", { text: a.class || "—" }),
    el("td", {}, el("span", { class: `state ${s}`, text: stateLabel(s) }), a.incident_id ? el("span", { class: "chip", text: "incident" }) : null));
  tr.addEventListener("click", () => selectAlert(a.id));
  return tr;
}

function renderFeed(fresh) {
  const body = $("#feed tbody");
  const rows = state.order.slice(0, FEED_MAX).map(id => row(state.alerts.get(id), fresh.has(id)));
  body.replaceChildren(...rows);
  const open = state.order.filter(id => alertState(state.alerts.get(id)) === "open").length;
  $("#open-count").textContent = open ? String(open) : "";
  const more = $("#feed-more");
  more.replaceChildren(state.nextCursor ? el("button", { class: "link", text: "older alerts…", onclick: loadMore }) : "");
}

// Server-sent events, rendered at most once per animation frame: a burst of batches is one repaint.
function connectFeed() {
  if (state.source) state.source.close();
  const src = new EventSource("/api/v1/stream");
  state.source = src;
  src.addEventListener("hello", () => setLive(true));
  src.addEventListener("alerts", ev => queue(JSON.parse(ev.data)));
  src.addEventListener("update", ev => queue(JSON.parse(ev.data)));
  src.addEventListener("resync", () => loadAlerts());
  src.onerror = () => { setLive(false); };
  src.onopen = () => setLive(true);
}

function setLive(on) { const s = $("#live-state"); s.textContent = on ? "live" : "reconnecting"; s.className = `live ${on ? "on" : "off"}`; }

function queue(event) {
  state.pending.push(event);
  if (!state.frame) state.frame = requestAnimationFrame(flush);
}

function flush() {
  state.frame = 0;
  const events = state.pending.splice(0);
  const fresh = new Set();
  let loud = false;
  for (const ev of events) {
    for (const a of ev.alerts || []) {
      const known = state.alerts.has(a.id);
      if (known) state.alerts.set(a.id, a);
      else if (ev.type === "alerts" && matches(a, state.filters)) {
        state.alerts.set(a.id, a); state.order.unshift(a.id); fresh.add(a.id);
        if (a.severity === "high" || a.severity === "critical") loud = true;
      }
    }
    for (const [inc, ids] of Object.entries(ev.incident_alerts || {})) {
      for (const id of ids) { const a = state.alerts.get(id); if (a) a.incident_id = inc; }
    }
    for (const inc of ev.incidents || []) state.incidents.set(inc.id, inc);
    remember(ev.alerts || []);
  }
  // Newest first by event time (a late delivery from a post that was cut off sorts into place).
  state.order.sort((x, y) => { const a = state.alerts.get(x), b = state.alerts.get(y); return a.time < b.time ? 1 : a.time > b.time ? -1 : (x < y ? 1 : -1); });
  if (state.order.length > FEED_MAX * 2) for (const id of state.order.splice(FEED_MAX * 2)) state.alerts.delete(id);
  renderFeed(fresh);
  if (state.selected && events.some(e => (e.alerts || []).some(a => a.id === state.selected))) renderDetail(state.alerts.get(state.selected));
  if (events.some(e => e.incidents?.length)) renderIncidents();
  if (loud && state.sound) beep();
}

$("#sound-toggle").addEventListener("change", e => { state.sound = e.target.checked; if (state.sound) beep(); });

function beep() {
  try {
    state.audio = state.audio || new AudioContext();
    const o = state.audio.createOscillator(), g = state.audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.08;
    o.connect(g).connect(state.audio.destination);
    o.start(); o.stop(state.audio.currentTime + 0.18);
  } catch { /* no audio device: the badge still counts */ }
}

// --- alert detail ------------------------------------------------------------------------------

async function selectAlert(id) {
  state.selected = id;
  for (const tr of $$("#feed tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  let a = state.alerts.get(id);
  try { a = await api(`/api/v1/alerts/${id}`); state.alerts.set(id, a); } catch { /* keep the feed's copy */ }
  renderDetail(a);
}

function renderDetail(a) {
  const pane = $("#detail");
  pane.dataset.id = a.id;
  const s = alertState(a);
  const canvas = el("canvas", { id: "detail-canvas", class: "snapshot", width: 640, height: 360 });
  const pos = a.position;
  const facts = el("dl", { class: "facts" },
    el("dt", { text: "post / camera" }), el("dd", { text: `${a.site}/${a.node} · ${a.camera}` }),
    el("dt", { text: "rule" }), el("dd", { text: `${a.rule} (${a.rule_type})${a.zone ? " · zone " + a.zone : ""}${a.line ? " · line " + a.line + (a.direction ? " " + a.direction : "") : ""}` }),
    el("dt", { text: "object" }), el("dd", { text: `${a.class || "—"} · track ${a.track_id ?? "—"} · score ${a.score.toFixed(2)} (best ${a.best_score.toFixed(2)})` }),
    el("dt", { text: "sensors" }), el("dd", { id: "detail-sensors" }, ...["camera", "radar", "ais"].map(x => el("span", { class: `chip${(a.sensors || []).includes(x) ? " on" : ""}`, text: x }))),
    el("dt", { text: "position" }), el("dd", { id: "detail-position", text: pos ? `${pos.lat.toFixed(6)}, ${pos.lon.toFixed(6)}${pos.sigma_m != null ? ` ± ${pos.sigma_m.toFixed(1)} m` : ""}` : "not known (no camera geometry)" }),
    a.radar ? el("dt", { text: "radar" }) : null, a.radar ? el("dd", { text: `${a.radar.source} #${a.radar.target}${a.radar.range_m != null ? ` · ${Math.round(a.radar.range_m)} m` : ""}${a.radar.speed_mps != null ? ` · ${a.radar.speed_mps.toFixed(1)} m/s` : ""}` }) : null,
    a.ais ? el("dt", { text: "AIS" }) : null, a.ais ? el("dd", { text: `${a.ais.mmsi} ${a.ais.name || ""}` }) : null,
    el("dt", { text: "state" }), el("dd", { id: "detail-state", text: stateLabel(s) + (a.acknowledged_by ? ` by ${a.acknowledged_by}` : "") + (a.ack_note ? ` — “${a.ack_note}”` : "") }),
    a.incident_id ? el("dt", { text: "incident" }) : null, a.incident_id ? el("dd", {}, el("button", { class: "link", text: a.incident_id, onclick: () => { showView("incidents"); selectIncident(a.incident_id); } })) : null);
  const times = [["first seen", a.first_seen], ["condition began", a.started], ["alert", a.time], ["last seen", a.last_seen],
    ["received by central", a.received_at], ["acknowledged", a.acknowledged_at]].filter(x => x[1]).sort((x, y) => x[1] < y[1] ? -1 : 1);
  const timeline = el("ol", { class: "timeline", id: "detail-timeline" }, ...times.map(([k, t]) => el("li", { text: `${clock(t)} ${k}` })));
  const note = el("textarea", { id: "ack-note", class: "note", placeholder: "note: what was done", maxlength: 2000 });
  const buttons = el("div", { class: "row" },
    el("button", { id: "ack-btn", class: "primary", text: s === "open" ? "Acknowledge" : "Update note", onclick: () => act(a.id, "ack") }),
    el("button", { id: "fa-btn", class: "danger", text: "False alarm", disabled: s === "false_alarm", onclick: () => act(a.id, "false-alarm") }));
  pane.replaceChildren(el("h2", { text: `${a.severity.toUpperCase()} · ${a.rule} · ${a.class || "object"}` }), canvas, facts,
    el("h3", { text: "Time line" }), timeline, note, buttons, el("p", { id: "detail-message", class: "muted small" }));
  drawSnapshot(canvas, a);
  api(`/api/v1/alerts/${a.id}/history`).then(h => {
    for (const e of h.entries.reverse()) timeline.append(el("li", { text: `${clock(e.at)} ${e.action.replace("_", " ")} by ${e.actor}${e.detail?.note ? ` — “${e.detail.note}”` : ""}` }));
  }).catch(() => {});
}

function drawSnapshot(canvas, a) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const draw = img => {
    const [fw, fh] = a.frame_size || [img ? img.naturalWidth : canvas.width, img ? img.naturalHeight : canvas.height];
    canvas.height = Math.round(canvas.width * fh / fw);
    if (img) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const k = canvas.width / fw;
    if (a.path?.length > 1) {
      ctx.strokeStyle = "#4aa3ff"; ctx.lineWidth = 2; ctx.beginPath();
      a.path.forEach((p, i) => i ? ctx.lineTo(p.x * k, p.y * k) : ctx.moveTo(p.x * k, p.y * k));
      ctx.stroke();
      for (const p of a.path) { ctx.fillStyle = "#4aa3ff"; ctx.fillRect(p.x * k - 1.5, p.y * k - 1.5, 3, 3); }
    }
    if (a.bbox) {
      const [x1, y1, x2, y2] = a.bbox;
      ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue(`--${a.severity}`).trim() || "#ff3b3b";
      ctx.lineWidth = 3; ctx.strokeRect(x1 * k, y1 * k, (x2 - x1) * k, (y2 - y1) * k);
      ctx.font = "14px system-ui"; ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(`${a.class} ${a.score.toFixed(2)}`, x1 * k, Math.max(14, y1 * k - 4));
    }
    if (!img) { ctx.fillStyle = "#8898aa"; ctx.font = "14px system-ui"; ctx.fillText("no snapshot (yet)", 12, 24); }
  };
  if (!a.snapshot_url) return draw(null);
  const img = new Image();
  img.onload = () => draw(img);
  img.onerror = () => draw(null);
  img.src = a.snapshot_url;
}

async function act(id, what) {
  const note = $("#ack-note").value.trim() || null;
  try {
    const a = await api(`/api/v1/alerts/${id}/${what}`, { method: "POST", body: { note } });
    state.alerts.set(id, a);
    renderFeed(new Set());
    renderDetail(a);
    $("#detail-message").textContent = what === "ack" ? "acknowledged" : "marked as a false alarm (kept as feedback)";
  } catch (e) { $("#detail-message").textContent = e.message; }
}

// --- incidents ---------------------------------------------------------------------------------

$("#incident-state").addEventListener("change", loadIncidents);

async function loadIncidents() {
  const st = $("#incident-state").value;
  const data = await api(`/api/v1/incidents${st ? "?state=" + st : ""}`);
  state.incidents = new Map(data.incidents.map(i => [i.id, i]));
  renderIncidents();
}

function renderIncidents() {
  const st = $("#incident-state").value;
  const list = [...state.incidents.values()].filter(i => !st || (st === "open") === !i.acknowledged)
    .sort((a, b) => a.last_time < b.last_time ? 1 : -1);
  $("#incident-count").textContent = [...state.incidents.values()].filter(i => !i.acknowledged).length || "";
  $("#incidents tbody").replaceChildren(...list.map(i => {
    const tr = el("tr", { class: `alert sev-${i.severity}${i.acknowledged ? " done" : ""}${i.id === state.selectedIncident ? " selected" : ""}`, "data-id": i.id },
      el("td", { text: clock(i.last_time) }), el("td", {}, el("span", { class: `sev ${i.severity}`, text: i.severity })),
      el("td", { text: i.family }), el("td", { text: i.alert_count }),
      el("td", { text: `${i.summary.cameras.join(", ")} (${i.summary.sensors.join("+")})` }),
      el("td", {}, el("span", { class: `state ${i.acknowledged ? "acknowledged" : "open"}`, text: i.acknowledged ? "acknowledged" : "open" })));
    tr.addEventListener("click", () => selectIncident(i.id));
    return tr;
  }));
}

async function selectIncident(id) {
  state.selectedIncident = id;
  renderIncidents();
  const inc = await api(`/api/v1/incidents/${id}`);
  const pane = $("#incident-detail");
  const note = el("textarea", { id: "incident-note", class: "note", placeholder: "note", maxlength: 2000 });
  pane.replaceChildren(
    el("h2", { text: `Incident · ${inc.family} · ${inc.alert_count} alerts` }),
    el("dl", { class: "facts" },
      el("dt", { text: "seen" }), el("dd", { text: `${fmtTime(inc.first_time)} – ${clock(inc.last_time)}` }),
      el("dt", { text: "position" }), el("dd", { text: inc.lat != null ? `${inc.lat.toFixed(6)}, ${inc.lon.toFixed(6)}` : "—" }),
      el("dt", { text: "posts" }), el("dd", { text: inc.summary.nodes.join(", ") }),
      el("dt", { text: "sensors" }), el("dd", { text: inc.summary.sensors.join(", ") }),
      el("dt", { text: "state" }), el("dd", { text: inc.acknowledged ? `acknowledged by ${inc.acknowledged_by}` : "open" })),
    el("table", { class: "grid" }, el("tbody", {}, ...inc.alerts.map(a => {
      const tr = el("tr", { class: `alert sev-${a.severity}` }, el("td", { text: clock(a.time) }), el("td", { text: `${a.node}/${a.camera}` }),
        el("td", { text: a.rule }), el("td", { text: a.class }), el("td", { text: stateLabel(alertState(a)) }));
      tr.addEventListener("click", () => { state.alerts.set(a.id, a); showView("alerts"); selectAlert(a.id); });
      return tr;
    }))),
    note,
    el("div", { class: "row" }, el("button", { id: "incident-ack", class: "primary", text: "Acknowledge incident and its alerts", onclick: async () => {
      await api(`/api/v1/incidents/${id}/ack`, { method: "POST", body: { note: note.value.trim() || null } });
      await loadIncidents(); selectIncident(id); loadAlerts();
    } })));
}

// --- posts (node health) -----------------------------------------------------------------------

async function loadNodes() {
  const data = await api("/api/v1/nodes");
  $("#nodes tbody").replaceChildren(...data.nodes.map(n => {
    const hb = n.heartbeat;
    const cams = hb ? hb.cameras.map(c => `${c.camera}: ${c.fps.toFixed(1)} fps, ${c.inference_ms.toFixed(0)} ms${c.source_state !== "connected" && c.source_state !== "replaying" ? " (" + c.source_state + ")" : ""}`).join("; ") : "—";
    const cs = n.config_state;
    const applied = cs?.applied_version || n.config_version || "—";
    const desired = n.desired_version || "—";
    const cfgClass = !n.desired_version ? "" : cs?.state === "rejected" && cs.desired_version === n.desired_version ? "rejected" : applied === desired ? "applied" : "pending";
    const hbAge = n.heartbeat_time ? (Date.now() - new Date(n.heartbeat_time)) / 1000 : null;
    return el("tr", { "data-node": `${n.site}/${n.node}` },
      el("td", { text: `${n.site}/${n.node}` }),
      el("td", {}, el("span", { class: n.state, text: n.state })),
      el("td", { text: ago(hbAge) }),
      el("td", { text: cams }),
      el("td", { text: hb ? `${hb.outbox_depth}${hb.outbox_oldest_s ? ` (oldest ${Math.round(hb.outbox_oldest_s)} s)` : ""}` : "—" }),
      el("td", { class: "state-line" }, el("span", { class: cfgClass, text: `${desired} / ${applied}` }),
        cs?.state === "rejected" ? el("div", { class: "rejected small", text: (cs.errors || []).slice(0, 2).join("; ") }) : null),
      el("td", {}, el("button", { class: "config-btn", text: "config", onclick: () => openConfig(n.site, n.node) })));
  }));
  if (state.config) refreshConfigState();
}

// --- node config editor ------------------------------------------------------------------------

async function openConfig(site, node) {
  const mine = state.config = { site, node, errors: [], data: null, dirty: false, desired: null };
  // Read-only, and no saving, until the stored version is in: it replaces the editor's text, and
  // anything typed or pasted before it arrived would be lost (or an empty text saved).
  $("#config-yaml").readOnly = true;
  $("#config-save").disabled = true;
  $("#config-view").hidden = false;
  $("#config-node").textContent = `Config of ${site}/${node}`;
  const editable = may("operator");
  let cfg;
  try {
    cfg = await api(`/api/v1/nodes/${site}/${node}/config`);
  } finally {
    if (state.config === mine) { $("#config-yaml").readOnly = !editable; $("#config-save").disabled = false; }
  }
  if (state.config !== mine) return;  // closed, or another post's config opened, while this one loaded
  $("#config-yaml").value = cfg.current ? cfg.current.yaml : "";
  $("#config-message").textContent = cfg.current ? "" : editable ? "No config stored for this node yet: paste its YAML and save." : "No config stored for this node yet.";
  state.config.desired = cfg.state.desired_version;
  renderVersions(cfg.versions);
  renderConfigState(cfg.state);
  gutter();
  if (cfg.current) await validateConfig();
  $("#config-view").scrollIntoView({ behavior: "smooth" });
}

$("#config-close").addEventListener("click", () => { $("#config-view").hidden = true; state.config = null; });

function gutter() {
  const text = $("#config-yaml").value;
  const n = text.split("\n").length;
  const bad = new Set((state.config?.errors || []).map(e => e.line).filter(Boolean));
  const g = $("#config-gutter");
  g.replaceChildren(...Array.from({ length: n }, (_, i) => {
    const line = i + 1;
    return el("span", { class: bad.has(line) ? "err" : null, "data-line": line, text: `${line}\n` });
  }));
  g.scrollTop = $("#config-yaml").scrollTop;
}

$("#config-yaml").addEventListener("scroll", () => { $("#config-gutter").scrollTop = $("#config-yaml").scrollTop; });
let validateTimer = 0;
$("#config-yaml").addEventListener("input", () => { state.config.dirty = true; gutter(); clearTimeout(validateTimer); validateTimer = setTimeout(validateConfig, 800); });
$("#config-validate").addEventListener("click", validateConfig);
$("#config-save").addEventListener("click", saveConfig);

function showErrors(errors) {
  state.config.errors = errors;
  $("#config-errors").replaceChildren(...errors.map(e => {
    const li = el("li", { "data-line": e.line || "", "data-path": e.path }, e.line ? el("b", { text: `line ${e.line}` }) : "", e.line ? " " : "",
      `${e.path ? e.path + ": " : ""}${e.message}`);
    li.addEventListener("click", () => goToLine(e.line));
    return li;
  }));
  gutter();
}

function goToLine(line) {
  if (!line) return;
  const ta = $("#config-yaml");
  const lines = ta.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((s, l) => s + l.length + 1, 0);
  ta.focus();
  ta.setSelectionRange(start, start + lines[line - 1].length);
  ta.scrollTop = Math.max(0, (line - 5) * 18);
}

async function validateConfig() {
  const { site, node } = state.config;
  const r = await api(`/api/v1/nodes/${site}/${node}/config/validate`, { method: "POST", body: { yaml: $("#config-yaml").value } });
  showErrors(r.errors);
  $("#config-message").textContent = r.ok ? "valid" : `${r.errors.length} problem(s): not saved`;
  if (r.config) { state.config.data = r.config; setupZoneEditor(); }
  return r.ok;
}

async function saveConfig() {
  const { site, node } = state.config;
  $("#config-message").textContent = "saving…";
  try {
    const r = await api(`/api/v1/nodes/${site}/${node}/config`, { method: "PUT", body: { yaml: $("#config-yaml").value, comment: $("#config-comment").value.trim() || null } });
    showErrors([]);
    $("#config-message").textContent = `saved as ${r.version}${r.published ? ", published to the node" : ", to be published when the broker is back"}`;
    $("#config-comment").value = "";
    state.config.dirty = false;
    state.config.desired = r.version;
    const cfg = await api(`/api/v1/nodes/${site}/${node}/config`);
    renderVersions(cfg.versions); renderConfigState(cfg.state);
  } catch (e) {
    if (e.status === 422 && e.data?.errors) {
      showErrors(e.data.errors);
      $("#config-message").textContent = `${e.data.errors.length} problem(s): not saved, not pushed`;
      const first = e.data.errors.find(x => x.line);
      if (first) goToLine(first.line);
    }
    else $("#config-message").textContent = e.message;
  }
}

async function refreshConfigState() {
  const { site, node } = state.config;
  const cfg = await api(`/api/v1/nodes/${site}/${node}/config`);
  renderConfigState(cfg.state);
  if (cfg.state.desired_version !== state.config.desired) {
    // Someone saved a new version: show it, unless this user is in the middle of an edit.
    state.config.desired = cfg.state.desired_version;
    renderVersions(cfg.versions);
    if (!state.config.dirty && cfg.current) {
      $("#config-yaml").value = cfg.current.yaml;
      $("#config-message").textContent = `${cfg.current.version} saved by ${cfg.current.author}`;
      gutter();
      await validateConfig();
    }
  }
}

function renderConfigState(s) {
  const box = $("#config-state");
  if (!s.desired_version) { box.replaceChildren(el("span", { class: "muted", text: `applied: ${s.applied_version || "—"} (not managed by central yet)` })); return; }
  const rejected = s.state === "rejected";
  const cls = rejected ? "rejected" : s.applied_version === s.desired_version ? "applied" : "pending";
  box.replaceChildren(el("span", { id: "config-desired", text: `desired ${s.desired_version}` }), " · ",
    el("span", { id: "config-applied", class: cls, "data-version": s.applied_version || "", text: `applied ${s.applied_version || "—"}${cls === "pending" ? " (waiting for the node)" : ""}` }),
    rejected ? el("div", { id: "config-node-error", class: "rejected small", text: `node refused: ${(s.errors || []).join("; ")}` }) : "");
}

function renderVersions(versions) {
  $("#config-versions tbody").replaceChildren(...versions.map(v => {
    const tr = el("tr", { "data-number": v.number },
      el("td", { text: v.version + (v.rollback_of ? ` (= v${v.rollback_of})` : "") }), el("td", { text: v.author }),
      el("td", { text: fmtTime(v.created_at) }), el("td", { text: v.comment || "" }),
      el("td", {}, may("operator") && v !== versions[0] ? el("button", { class: "link rollback", text: "roll back", onclick: async ev => {
        ev.stopPropagation();
        const { site, node } = state.config;
        const r = await api(`/api/v1/nodes/${site}/${node}/config/rollback`, { method: "POST", body: { number: v.number } });
        $("#config-message").textContent = `rolled back: ${r.version} has ${v.version}'s content`;
        openConfig(site, node);
      } }) : ""));
    tr.addEventListener("click", async () => {
      const { site, node } = state.config;
      const d = await api(`/api/v1/nodes/${site}/${node}/config/versions/${v.number}`);
      $("#config-diff").textContent = d.diff || "(no change)";
    });
    return tr;
  }));
}

// --- zone editor: polygons and lines over the camera's latest picture --------------------------

function setupZoneEditor() {
  const cams = (state.config.data?.cameras || []).filter(c => c && c.id);
  const sel = $("#zone-camera");
  const keep = sel.value;
  sel.replaceChildren(...cams.map(c => el("option", { value: c.id, text: c.id })));
  if (keep && cams.some(c => c.id === keep)) sel.value = keep;
  if (!state.zone || state.zone.camera !== sel.value) loadZoneCamera();
}

$("#zone-camera").addEventListener("change", loadZoneCamera);

async function loadZoneCamera() {
  const cam = $("#zone-camera").value;
  const c = (state.config.data?.cameras || []).find(x => x.id === cam);
  if (!c) return;
  state.zone = { camera: cam, zones: structuredClone(c.zones || []), lines: structuredClone(c.lines || []), img: null, size: null, drawing: null };
  const { site, node } = state.config;
  try {
    const r = await api(`/api/v1/nodes/${site}/${node}/cameras/${cam}/snapshot`, { raw: true });
    if (r.ok) {
      const w = +r.headers.get("X-Frame-Width"), h = +r.headers.get("X-Frame-Height");
      const img = new Image();
      img.src = URL.createObjectURL(await r.blob());
      await img.decode();
      state.zone.img = img;
      state.zone.size = [w || img.naturalWidth, h || img.naturalHeight];
    }
  } catch { /* no picture yet: draw on a blank frame */ }
  if (!state.zone.size) state.zone.size = [1280, 720];
  drawZones();
}

const toPx = (shape, p) => shape.coordinates === "normalized" ? [p[0] * state.zone.size[0], p[1] * state.zone.size[1]] : p;

function drawZones() {
  const z = state.zone, canvas = $("#zone-canvas"), ctx = canvas.getContext("2d");
  canvas.height = Math.round(canvas.width * z.size[1] / z.size[0]);
  const k = canvas.width / z.size[0];
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (z.img) ctx.drawImage(z.img, 0, 0, canvas.width, canvas.height);
  const path = (pts, close) => { ctx.beginPath(); pts.forEach((p, i) => i ? ctx.lineTo(p[0] * k, p[1] * k) : ctx.moveTo(p[0] * k, p[1] * k)); if (close) ctx.closePath(); };
  for (const zone of z.zones) {
    ctx.strokeStyle = zone.color || "#ffb000"; ctx.fillStyle = (zone.color || "#ffb000") + "33"; ctx.lineWidth = 2;
    const pts = zone.points.map(p => toPx(zone, p)); path(pts, true); ctx.fill(); ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.font = "13px system-ui"; ctx.fillText(zone.id, pts[0][0] * k + 4, pts[0][1] * k + 14);
  }
  for (const line of z.lines) {
    ctx.strokeStyle = line.color || "#00e0ff"; ctx.lineWidth = 3;
    const pts = line.points.map(p => toPx(line, p)); path(pts, false); ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.fillText(line.id, pts[0][0] * k + 4, pts[0][1] * k - 6);
  }
  if (z.drawing) {
    ctx.strokeStyle = "#ff3bff"; ctx.lineWidth = 2; path(z.drawing.points, false); ctx.stroke();
    for (const p of z.drawing.points) { ctx.fillStyle = "#ff3bff"; ctx.fillRect(p[0] * k - 3, p[1] * k - 3, 6, 6); }
  }
  $("#zone-list").replaceChildren(...[...z.zones.map(s => ["zone", s]), ...z.lines.map(s => ["line", s])].map(([kind, s]) =>
    el("li", {}, `${kind} ${s.id} (${s.points.length} points)`, may("operator") ? el("button", { class: "link", text: "delete", onclick: () => {
      z[kind === "zone" ? "zones" : "lines"] = z[kind === "zone" ? "zones" : "lines"].filter(x => x !== s); drawZones();
    } }) : "")));
}

function newShape(kind) {
  if (!state.zone) return;
  const id = prompt(`${kind} id (lower-case letters, digits, - and _)`, kind === "zone" ? "new-zone" : "new-line");
  if (!id) return;
  state.zone.drawing = { kind, id, points: [] };
  $("#config-message").textContent = kind === "zone" ? "click the zone's corners on the picture, then Finish" : "click the line's two ends";
}

$("#zone-new-polygon").addEventListener("click", () => newShape("zone"));
$("#zone-new-line").addEventListener("click", () => newShape("line"));
$("#zone-finish").addEventListener("click", finishShape);

$("#zone-canvas").addEventListener("click", ev => {
  const z = state.zone;
  if (!z?.drawing) return;
  const canvas = ev.currentTarget, rect = canvas.getBoundingClientRect();
  const x = (ev.clientX - rect.left) / rect.width * z.size[0], y = (ev.clientY - rect.top) / rect.height * z.size[1];
  z.drawing.points.push([Math.round(x), Math.round(y)]);
  if (z.drawing.kind === "line" && z.drawing.points.length === 2) return finishShape();
  drawZones();
});

function finishShape() {
  const z = state.zone, d = z?.drawing;
  if (!d) return;
  if (d.kind === "zone" && d.points.length >= 3) z.zones.push({ id: d.id, points: d.points, coordinates: "pixels" });
  if (d.kind === "line" && d.points.length === 2) z.lines.push({ id: d.id, points: d.points, coordinates: "pixels" });
  z.drawing = null;
  drawZones();
  $("#config-message").textContent = "drawn: Write to YAML, then Validate and Save";
}

$("#zone-apply").addEventListener("click", async () => {
  const z = state.zone;
  try {
    const r = await api("/api/v1/configs/zones", { method: "POST", body: { yaml: $("#config-yaml").value, camera: z.camera, zones: z.zones, lines: z.lines } });
    $("#config-yaml").value = r.yaml;
    gutter();
    await validateConfig();
  } catch (e) { $("#config-message").textContent = e.message; }
});

// --- plan view: posts, camera wedges, geo zones, alerts; Web Mercator so tiles line up ----------

const R = 6378137;
const merc = (lat, lon) => [R * lon * Math.PI / 180, R * Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360))];
function dest(lat, lon, bearing, dist) {
  const d = dist / 6371008.8, b = bearing * Math.PI / 180, p1 = lat * Math.PI / 180, l1 = lon * Math.PI / 180;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [p2 * 180 / Math.PI, l2 * 180 / Math.PI];
}

async function loadPlan() {
  const plan = await api("/api/v1/plan");
  const svg = $("#plan");
  const W = svg.clientWidth || 1000, H = svg.clientHeight || 600;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const ns = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; return e; };
  const wedges = [];
  for (const p of plan.posts) for (const c of p.cameras) if (c.lat != null && c.heading_deg != null && c.hfov_deg) {
    const range = c.range_m || 150, pts = [[c.lat, c.lon]];
    for (let i = 0; i <= 12; i++) pts.push(dest(c.lat, c.lon, c.heading_deg - c.hfov_deg / 2 + c.hfov_deg * i / 12, range));
    wedges.push({ c, pts });
  }
  const all = [...plan.posts.filter(p => p.lat != null).map(p => [p.lat, p.lon]), ...plan.posts.flatMap(p => p.geo_zones.flatMap(z => z.points)),
    ...wedges.flatMap(w => w.pts), ...plan.alerts.map(a => [a.lat, a.lon])];
  svg.replaceChildren();
  if (!all.length) { svg.append(s("text", { x: 20, y: 30 }, "No post has a position yet (node lat/lon in its config).")); return; }
  const xy = all.map(([la, lo]) => merc(la, lo));
  let [x0, x1] = [Math.min(...xy.map(p => p[0])), Math.max(...xy.map(p => p[0]))];
  let [y0, y1] = [Math.min(...xy.map(p => p[1])), Math.max(...xy.map(p => p[1]))];
  const pad = Math.max(40, 0.15 * Math.max(x1 - x0, y1 - y0));
  x0 -= pad; x1 += pad; y0 -= pad; y1 += pad;
  const scale = Math.min(W / (x1 - x0), H / (y1 - y0));
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const P = (lat, lon) => { const [x, y] = merc(lat, lon); return [W / 2 + (x - cx) * scale, H / 2 - (y - cy) * scale]; };
  const poly = pts => pts.map(([la, lo]) => P(la, lo).map(v => v.toFixed(1)).join(",")).join(" ");
  if (plan.tiles_url) drawTiles(svg, s, plan.tiles_url, scale, cx, cy, W, H);
  for (const p of plan.posts) for (const z of p.geo_zones)
    svg.append(s("polygon", { points: poly(z.points), fill: (z.color || "#3c8cff") + "33", stroke: z.color || "#3c8cff", "stroke-width": 2, class: "geo-zone" }),
      s("text", { x: P(...z.points[0])[0] + 4, y: P(...z.points[0])[1] - 4 }, z.name || z.id));
  for (const w of wedges) svg.append(s("polygon", { points: poly(w.pts), fill: "#4aa3ff22", stroke: "#4aa3ff", "stroke-dasharray": "4 3", class: "fov" }));
  for (const inc of plan.incidents) { const [x, y] = P(inc.lat, inc.lon); svg.append(s("circle", { cx: x, cy: y, r: 14, fill: "none", stroke: "#ff3bff", "stroke-width": 2, class: "incident" })); }
  for (const a of plan.alerts) {
    const [x, y] = P(a.lat, a.lon);
    const c = s("circle", { cx: x, cy: y, r: a.acknowledged ? 4 : 6, fill: getComputedStyle(document.documentElement).getPropertyValue(`--${a.severity}`).trim(), opacity: a.acknowledged ? 0.5 : 0.95, class: "plan-alert", "data-id": a.id });
    c.append(s("title", {}, `${a.severity} ${a.class} ${clock(a.time)}`));
    c.addEventListener("click", () => { showView("alerts"); selectAlert(a.id); });
    svg.append(c);
  }
  const labels = [];  // posts on one spot (one mast, two nodes) get their labels stacked, not overprinted
  for (const p of plan.posts) if (p.lat != null) {
    const [x, y] = P(p.lat, p.lon);
    let ly = y + 4;
    while (labels.some(([lx, py]) => Math.abs(lx - x) < 160 && Math.abs(py - ly) < 15)) ly += 16;
    labels.push([x, ly]);
    svg.append(s("rect", { x: x - 7, y: y - 7, width: 14, height: 14, fill: p.state === "online" ? "#2ecc71" : p.state === "offline" ? "#ff4d4d" : "#8898aa", class: "post" }),
      s("text", { x: x + 10, y: ly }, `${p.name || p.node} (${p.state})`));
  }
  const meters = niceScale(120 / scale);
  svg.append(s("line", { x1: 20, y1: H - 20, x2: 20 + meters * scale, y2: H - 20, stroke: "#dfe7ef", "stroke-width": 3 }), s("text", { x: 20, y: H - 28 }, `${meters} m`));
}

function niceScale(m) { const e = 10 ** Math.floor(Math.log10(m)); return [1, 2, 5, 10].map(k => k * e).find(v => v >= m) || m; }

function drawTiles(svg, s, url, scale, cx, cy, W, H) {
  const world = 2 * Math.PI * R;
  const z = Math.max(0, Math.min(19, Math.round(Math.log2(scale * world / 256))));
  const n = 2 ** z, tileM = world / n, half = world / 2;
  const left = cx - W / 2 / scale, right = cx + W / 2 / scale, top = cy + H / 2 / scale, bottom = cy - H / 2 / scale;
  for (let tx = Math.floor((left + half) / tileM); tx <= Math.floor((right + half) / tileM); tx++)
    for (let ty = Math.floor((half - top) / tileM); ty <= Math.floor((half - bottom) / tileM); ty++) {
      const x = W / 2 + (tx * tileM - half - cx) * scale, y = H / 2 - (half - ty * tileM - cy) * scale;
      svg.append(s("image", { href: url.replace("{z}", z).replace("{x}", tx).replace("{y}", ty), x, y, width: tileM * scale, height: tileM * scale, opacity: 0.6 }));
    }
}

// --- audit and users ---------------------------------------------------------------------------

async function loadAudit() {
  const data = await api("/api/v1/audit?limit=200");
  $("#audit tbody").replaceChildren(...data.entries.map(e => el("tr", {},
    el("td", { text: fmtTime(e.at) }), el("td", { text: e.actor }), el("td", { text: e.action }), el("td", { text: e.target || "" }),
    el("td", { class: "small", text: e.detail ? Object.entries(e.detail).filter(([k, v]) => v !== null && k !== "diff").map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") : "" }))));
}

async function loadUsers() {
  const data = await api("/api/v1/users");
  $("#users tbody").replaceChildren(...data.users.map(u => {
    const role = el("select", {}, ...["guard", "operator", "admin"].map(r => el("option", { value: r, text: r, selected: r === u.role })));
    role.addEventListener("change", () => changeUser(u.username, { role: role.value }));
    return el("tr", { "data-user": u.username }, el("td", { text: u.username }), el("td", {}, role),
      el("td", {}, el("button", { class: "link", text: u.active ? "active — disable" : "disabled — enable", onclick: () => changeUser(u.username, { active: !u.active }) })),
      el("td", { text: fmtTime(u.created_at) }));
  }));
}

async function changeUser(name, change) {
  try { await api(`/api/v1/users/${encodeURIComponent(name)}`, { method: "PATCH", body: change }); $("#user-message").textContent = `${name} changed`; }
  catch (e) { $("#user-message").textContent = e.message; }
  loadUsers();
}

$("#user-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  try {
    await api("/api/v1/users", { method: "POST", body: { username: $("#user-name").value, password: $("#user-pass").value, role: $("#user-role").value } });
    $("#user-message").textContent = `${$("#user-name").value} added`;
    $("#user-name").value = ""; $("#user-pass").value = "";
    loadUsers();
  } catch (e) { $("#user-message").textContent = e.message; }
});

start();
