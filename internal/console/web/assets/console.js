// The operator console. It calls only the public JSON API, with the session
// cookie the sign-in set (the browser sends it; this script cannot read
// it) and the X-Console-Request header that marks its own calls.
"use strict";

(function () {
  const STATUSES = ["pending", "sending", "sent", "failed", "expired", "canceled", "suppressed"];
  const PAGE_SIZE = 20;
  const REFRESH_MS = 3000;
  const CHART_REFRESH_MS = 15000;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = {
    filter: "all",
    cursors: [null], // cursors[i] fetches page i
    page: 0,
    nextCursor: null,
    selected: null,
  };

  // ---- API ------------------------------------------------------------

  class APIError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || "request failed with status " + status);
      this.status = status;
      this.code = e.code || "";
      this.field = e.field || "";
    }
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-Console-Request": "1" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) {
      // The session ended (expired, or the key changed): sign in again.
      window.location.assign("/console/signin?next=" + encodeURIComponent("/console/"));
      throw new APIError(401, null);
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  // ---- Formatting -----------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  function clock(iso, withSeconds) {
    if (!iso) return "–";
    const d = new Date(iso);
    const t = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return withSeconds === false ? t : t + ":" + pad(d.getSeconds());
  }
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const day = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    return sameDay ? clock(iso) : day + " " + clock(iso);
  }
  function relative(iso) {
    if (!iso) return "–";
    const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a === 0) return "now";
    const txt = a < 60 ? a + " s" : a < 3600 ? Math.round(a / 60) + " min" : Math.round(a / 3600) + " h";
    return s >= 0 ? "in " + txt : txt + " ago";
  }
  function duration(sec) {
    if (sec % 3600 === 0) return sec / 3600 + " h";
    if (sec % 60 === 0) return sec / 60 + " min";
    return sec + " s";
  }
  const fmt = new Intl.NumberFormat("en-US");

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("data-") || k === "title" || k === "type" || k === "aria-label") e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children || []) e.append(c);
    return e;
  }
  function badge(status) {
    return el("span", { class: "badge s-" + status, text: status });
  }

  let toastTimer = 0;
  function toast(msg, isError) {
    const t = $("#toast");
    t.textContent = msg;
    t.classList.toggle("error", !!isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 3500);
  }
  function failed(what) {
    return (err) => {
      if (err && err.status === 401) return;
      toast(what + ": " + (err && err.message ? err.message : err), true);
    };
  }

  // ---- Sending switch --------------------------------------------------

  async function refreshSwitch() {
    const s = await api("GET", "/api/v1/scheduler");
    const st = s.running ? "running" : (s.paused_reason ? "paused" : "stopped");
    $("#switch-state").textContent = st;
    $("#state-box").dataset.state = st;
    const reason = $("#switch-reason");
    reason.hidden = !(st === "paused");
    reason.textContent = s.paused_reason ? "Paused: " + s.paused_reason : "";
    $("#f-interval").textContent = duration(s.interval_seconds);
    $("#f-batch").textContent = fmt.format(s.batch_size) + " messages";
    $("#f-last").textContent = s.last_run_at ? relative(s.last_run_at) : "never";
    $("#f-last").title = s.last_run_at || "";
    $("#f-next").textContent = s.running ? (s.next_run_at ? relative(s.next_run_at) : "waiting for a scheduler") : "–";
    $("#btn-start").disabled = s.running;
    $("#btn-stop").disabled = !s.running;
  }

  async function setSwitch(on) {
    const b = on ? $("#btn-start") : $("#btn-stop");
    b.disabled = true;
    try {
      await api("POST", on ? "/api/v1/scheduler/start" : "/api/v1/scheduler/stop");
      toast(on ? "Sending started" : "Sending stopped");
    } catch (err) {
      failed(on ? "Start" : "Stop")(err);
    }
    await refreshSwitch().catch(failed("Read the switch"));
  }

  // ---- Providers ----------------------------------------------------------

  // refreshProviders shows each provider with its state, and an enable
  // button that is live while a 410 has it disabled.
  async function refreshProviders() {
    const list = await api("GET", "/api/v1/providers");
    const items = (list.data || []).map((p) => {
      const btn = el("button", { type: "button", class: "ghost", "data-testid": "btn-enable-" + p.name, text: "Enable" });
      btn.disabled = p.state !== "disabled";
      btn.addEventListener("click", () => enableProvider(p.name, btn));
      return el("li", { class: "provider", "data-testid": "provider-" + p.name, "data-state": p.state }, [
        el("span", { class: "name", text: p.name }),
        el("span", { class: "muted mono", text: p.host }),
        el("span", { class: "badge p-" + p.state, "data-field": "state", text: p.state, title: p.reason || "" }),
        el("span", { class: "muted", text: p.calls_last_minute + " calls, " + p.failures_last_minute + " failed in the last minute" +
          (p.rate > 0 ? " · limit " + p.rate + "/s" : "") }),
        btn,
      ]);
    });
    $("#providers").replaceChildren(...items);
  }

  async function enableProvider(name, btn) {
    btn.disabled = true;
    try {
      await api("POST", "/api/v1/providers/" + encodeURIComponent(name) + "/enable");
      toast("Provider " + name + " enabled");
    } catch (err) {
      failed("Enable " + name)(err);
    }
    await refreshProviders().catch(failed("Read the providers"));
  }

  // ---- Counts -----------------------------------------------------------

  async function refreshCounts() {
    const c = await api("GET", "/api/v1/stats/counts");
    for (const s of STATUSES) {
      const n = c[s] || 0;
      const node = $("#count-" + s);
      const txt = String(n);
      if (node.textContent !== txt) node.textContent = txt;
      node.title = fmt.format(n) + " messages " + s + " now";
    }
  }

  // ---- Chart ------------------------------------------------------------

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // niceMax is the top of the y axis: four whole-number steps of 1, 2, 3 or 5
  // times a power of ten, at or above the peak.
  function niceMax(peak) {
    const raw = Math.max(1, Math.ceil(peak / 4));
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 3, 5, 10]) if (m * p >= raw) return 4 * m * p;
    return 40 * p;
  }

  async function refreshChart() {
    const res = await api("GET", "/api/v1/stats/minutes");
    drawChart(res.data || []);
  }

  function drawChart(points) {
    const W = 1000, H = 200, L = 40, R = 8, T = 10, B = 24;
    const host = $("#chart");
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    let sumSent = 0, sumFailed = 0, peak = 0;
    for (const p of points) {
      sumSent += p.sent; sumFailed += p.failed;
      peak = Math.max(peak, p.sent + p.failed);
    }
    $("#sum-sent").textContent = fmt.format(sumSent);
    $("#sum-failed").textContent = fmt.format(sumFailed);
    root.setAttribute("aria-label", `${sumSent} calls sent and ${sumFailed} calls failed in the last hour`);
    const max = niceMax(peak);
    const plotH = H - T - B, plotW = W - L - R;
    const y = (v) => T + plotH - (v / max) * plotH;

    const grid = svg("g", { class: "grid" });
    const axis = svg("g", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      grid.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      axis.append(svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end" }, fmt.format(v)));
    }
    root.append(grid);

    const n = Math.max(points.length, 1);
    const slot = plotW / n;
    const bw = Math.max(2, slot * 0.72);
    points.forEach((p, i) => {
      const x = L + i * slot + (slot - bw) / 2;
      const g = svg("g", { class: "slot" });
      g.append(svg("title", {}, `${clock(p.minute, false)}  calls: ${p.sent} sent, ${p.failed} failed`));
      g.append(svg("rect", { class: "hit", x: L + i * slot, y: T, width: slot, height: plotH, fill: "transparent" }));
      if (p.sent > 0) g.append(svg("rect", { class: "bar-sent", x, y: y(p.sent), width: bw, height: y(0) - y(p.sent), rx: 1.5 }));
      if (p.failed > 0) {
        const top = y(p.sent + p.failed);
        g.append(svg("rect", { class: "bar-failed", x, y: top, width: bw, height: y(p.sent) - top, rx: 1.5 }));
      }
      root.append(g);
      const d = new Date(p.minute);
      if (d.getMinutes() % 10 === 0) {
        axis.append(svg("text", { x: L + i * slot + slot / 2, y: H - 6, "text-anchor": "middle" }, clock(p.minute, false)));
      }
    });
    root.append(axis);
    if (peak === 0) {
      root.append(svg("text", { class: "empty-note", x: L + plotW / 2, y: T + plotH / 2, "text-anchor": "middle" },
        "No webhook call sent or failed a message in the last hour"));
    }
    host.replaceChildren(root);
  }

  // ---- Messages table ---------------------------------------------------

  function listPath(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) q.set("cursor", cursor);
    // The sent list has its own index and endpoint; every other view is
    // the general list, filtered by status.
    if (state.filter === "sent") return "/api/v1/messages/sent?" + q;
    if (state.filter !== "all") q.set("status", state.filter);
    return "/api/v1/messages?" + q;
  }

  async function refreshTable() {
    const res = await api("GET", listPath(state.cursors[state.page]));
    const rows = (res.data || []).map((m) => row(state.filter === "sent" ? Object.assign({ status: "sent" }, m) : m));
    $("#rows").replaceChildren(...rows);
    $("#rows-empty").hidden = rows.length > 0;
    state.nextCursor = res.next_cursor || null;
    $("#btn-older").disabled = !state.nextCursor;
    $("#btn-newer").disabled = state.page === 0;
    $("#page-info").textContent = "Page " + (state.page + 1);
  }

  function row(m) {
    const act = el("td", { class: "act" });
    if (m.status === "failed") {
      act.append(el("button", { type: "button", class: "small primary", "data-testid": "btn-retry", text: "Retry",
        onclick: (ev) => { ev.stopPropagation(); retry(m.id); } }));
    } else if (m.status === "pending") {
      act.append(el("button", { type: "button", class: "small danger", "data-testid": "btn-cancel", text: "Cancel",
        onclick: (ev) => { ev.stopPropagation(); cancel(m.id); } }));
    }
    const tr = el("tr", { "data-testid": "message-row", "data-id": m.id, "data-status": m.status, onclick: () => openDetail(m.id) }, [
      el("td", { class: "time", text: when(m.sent_at || m.created_at), title: m.sent_at || m.created_at || "" }),
      el("td", { class: "id mono", text: m.id, title: m.id }),
      el("td", { class: "to", text: m.phone_number }),
      el("td", { class: "content", text: m.content, title: m.content }),
      el("td", {}, [badge(m.status)]),
      el("td", { class: "num", text: m.attempts === undefined ? "–" : String(m.attempts) }),
      act,
    ]);
    if (m.id === state.selected) tr.classList.add("selected");
    return tr;
  }

  function setFilter(f) {
    if (!["all"].concat(STATUSES).includes(f)) f = "all";
    state.filter = f;
    state.cursors = [null];
    state.page = 0;
    for (const b of document.querySelectorAll("#filters button")) b.setAttribute("aria-selected", String(b.dataset.filter === f));
    for (const b of document.querySelectorAll(".count")) b.classList.toggle("active", b.dataset.status === f);
    refreshTable().catch(failed("List messages"));
  }

  // ---- One message ------------------------------------------------------

  const FIELDS = [
    ["id", "Id"], ["status", "Status"], ["phone_number", "To"], ["content", "Content"], ["attempts", "Tries"],
    ["priority", "Priority"], ["created_at", "Created"], ["send_at", "Send at"], ["expires_at", "Expires"],
    ["sent_at", "Sent"], ["remote_message_id", "Remote id"], ["delivery_status", "Delivery"],
    ["delivered_at", "Delivered"], ["provider", "Provider"], ["last_error", "Last error"],
  ];

  // TRIES_TITLE explains the message's attempts field: it counts the times
  // a worker took the message (since it was created or last retried), and
  // a try can end before any call, so the calls the attempts log holds are
  // shown beside it.
  const TRIES_TITLE = "Times a worker took this message since it was created or last retried. " +
    "A try can end without a call, for a message that cannot be sent.";

  async function openDetail(id) {
    state.selected = id;
    for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    if (window.location.hash !== "#msg=" + encodeURIComponent(id)) history.replaceState(null, "", "#msg=" + encodeURIComponent(id));
    await refreshDetail();
    if (state.selected === id) reveal($("#detail"));
  }

  // reveal scrolls node into the window when any of it is outside: the
  // detail sits below the form, and below the table in a narrow window.
  function reveal(node) {
    const r = node.getBoundingClientRect();
    const vh = window.innerHeight || document.documentElement.clientHeight;
    if (r.top >= 0 && r.bottom <= vh) return;
    node.scrollIntoView({ block: r.height <= vh ? "nearest" : "start" });
  }

  async function refreshDetail() {
    const id = state.selected;
    if (!id) return;
    const path = "/api/v1/messages/" + encodeURIComponent(id);
    const [m, attempts, events] = await Promise.all([
      api("GET", path),
      api("GET", path + "/attempts").catch((err) => {
        if (err.status === 404 && err.code !== "not_found") throw err;
        return null;
      }),
      api("GET", path + "/events").catch((err) => {
        if (err.status === 404 && err.code !== "not_found") throw err;
        return null;
      }),
    ]);
    if (state.selected !== id) return;
    const box = $("#detail");
    box.hidden = false;
    box.dataset.id = id;
    box.dataset.status = m.status;
    const dl = $("#detail-fields");
    const items = [];
    for (const [k, label] of FIELDS) {
      if (!(k in m) || m[k] === null || m[k] === "") continue;
      let v = m[k];
      let node;
      if (k === "status") node = badge(v);
      else if (k.endsWith("_at")) node = document.createTextNode(when(v));
      else node = document.createTextNode(String(v));
      const dd = el("dd", { class: k === "id" || k === "remote_message_id" ? "mono" : "", "data-field": k }, [node]);
      if (k.endsWith("_at")) dd.title = v;
      if (k === "attempts") dd.title = TRIES_TITLE;
      items.push(el("dt", { text: label, title: k === "attempts" ? TRIES_TITLE : undefined }), dd);
      if (k === "attempts" && attempts) {
        const calls = (attempts.data || []).length;
        items.push(el("dt", { text: "Calls", title: "Webhook calls recorded for this message, retries included" }),
          el("dd", { "data-field": "calls", text: String(calls) }));
      }
    }
    dl.replaceChildren(...items);
    $("#detail-retry").hidden = m.status !== "failed";
    $("#detail-cancel").hidden = m.status !== "pending";
    drawAttempts(attempts ? attempts.data || [] : null, m);
    drawEvents(events ? events.data || [] : null);
  }

  // drawEvents lists the message's status callback events, oldest first,
  // with a redeliver button on each failed one.
  function drawEvents(list) {
    const host = $("#detail-events");
    if (list === null) {
      host.replaceChildren(el("p", { class: "muted", text: "This server does not record status callbacks." }));
      return;
    }
    if (list.length === 0) {
      host.replaceChildren(el("p", { class: "muted", text: "No status change reported yet." }));
      return;
    }
    const badgeOf = { pending: "pending", delivered: "sent", failed: "failed" };
    const body = list.map((e) => {
      const act = el("td", {});
      if (e.status === "failed") {
        act.append(el("button", { type: "button", class: "small primary", "data-testid": "btn-redeliver", text: "Redeliver",
          onclick: () => redeliver(e.id) }));
      }
      return el("tr", { "data-testid": "event-row", "data-id": e.id, "data-status": e.status }, [
        el("td", { text: e.type.replace(/^message\./, "") }),
        el("td", { class: "time", text: clock(e.created_at), title: e.created_at }),
        el("td", {}, [el("span", { class: "badge s-" + badgeOf[e.status], text: e.status })]),
        el("td", { class: "num", text: String(e.attempts) }),
        el("td", { class: "content", text: e.last_error || "", title: e.last_error || "" }),
        act,
      ]);
    });
    host.replaceChildren(el("table", {}, [
      el("thead", {}, [el("tr", {}, ["Event", "Written", "Status", "Tries", "Error", ""].map((h) => el("th", { text: h })))]),
      el("tbody", {}, body),
    ]));
  }

  async function redeliver(id) {
    try {
      await api("POST", "/api/v1/events/" + encodeURIComponent(id) + "/redeliver");
      toast("Event queued again");
    } catch (err) { failed("Redeliver")(err); }
    await refreshDetail();
  }

  // noCallNote says why a message has no webhook call in the attempts log,
  // from its status and reason alone.
  function noCallNote(m) {
    const why = m.last_error ? " (the reason is under Last error)." : ".";
    switch (m.status) {
      case "pending": return m.attempts > 0 ? "No webhook call recorded yet." : "No webhook call yet.";
      case "sending": return "A worker holds this message; no webhook call recorded yet.";
      case "failed": return "Failed without a recorded webhook call" + why;
      case "expired": return "Expired without a webhook call" + why;
      case "canceled": return "Canceled before any webhook call.";
      case "suppressed": return "Suppressed: the number opted out, so no webhook call was made.";
      default: return "No webhook call recorded.";
    }
  }

  function drawAttempts(list, m) {
    const host = $("#detail-attempts");
    if (list === null) {
      host.replaceChildren(el("p", { class: "muted", text: "This server does not record attempts." }));
      return;
    }
    if (list.length === 0) {
      host.replaceChildren(el("p", { class: "muted calls-note", "data-testid": "detail-calls-note", text: noCallNote(m) }));
      return;
    }
    const body = list.map((a) => el("tr", {}, [
      el("td", { class: "num", text: String(a.attempt) }),
      el("td", { class: "time", text: clock(a.started_at), title: a.started_at }),
      el("td", { class: "num", text: a.duration_ms + " ms" }),
      el("td", { text: a.provider || "–" }),
      el("td", { class: "num", text: a.status_code === null || a.status_code === undefined ? "–" : String(a.status_code) }),
      el("td", {}, [el("span", { class: "badge s-" + ({ retry: "pending", gone: "expired" }[a.outcome] || a.outcome), text: a.outcome })]),
      el("td", { class: "content", text: a.error || "", title: a.error || "" }),
    ]));
    host.replaceChildren(el("table", {}, [
      el("thead", {}, [el("tr", {}, ["#", "Started", "Took", "Provider", "HTTP", "Outcome", "Error"].map((h) => el("th", { text: h })))]),
      el("tbody", {}, body),
    ]));
  }

  function closeDetail() {
    const row = document.querySelector("#rows tr.selected");
    if (row) row.scrollIntoView({ block: "nearest" });
    state.selected = null;
    const box = $("#detail");
    box.hidden = true;
    delete box.dataset.id;
    delete box.dataset.status;
    for (const tr of document.querySelectorAll("#rows tr.selected")) tr.classList.remove("selected");
    history.replaceState(null, "", window.location.pathname);
  }

  async function retry(id) {
    try {
      await api("POST", "/api/v1/messages/" + encodeURIComponent(id) + "/retry");
      toast("Message queued again");
    } catch (err) { failed("Retry")(err); }
    await refreshAll();
  }

  async function cancel(id) {
    try {
      await api("POST", "/api/v1/messages/" + encodeURIComponent(id) + "/cancel");
      toast("Message canceled");
    } catch (err) { failed("Cancel")(err); }
    await refreshAll();
  }

  // ---- Create -----------------------------------------------------------

  async function create(ev) {
    ev.preventDefault();
    const form = ev.target;
    const err = $("#create-error");
    err.hidden = true;
    const body = { phone_number: form.phone_number.value.trim(), content: form.content.value };
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const m = await api("POST", "/api/v1/messages", body);
      form.reset();
      $("#content-len").textContent = "0";
      toast("Message created");
      await refreshAll();
      await openDetail(m.id);
    } catch (e) {
      if (e.status === 401) return;
      err.textContent = e.message;
      err.hidden = false;
      const f = e.field && form.elements[e.field];
      if (f) f.focus();
    } finally {
      submit.disabled = false;
    }
  }

  // ---- Refresh loop -----------------------------------------------------

  async function refreshAll() {
    await Promise.all([
      refreshSwitch().catch(failed("Read the switch")),
      refreshProviders().catch(failed("Read the providers")),
      refreshCounts().catch(failed("Count messages")),
      refreshTable().catch(failed("List messages")),
      refreshDetail().catch(failed("Read the message")),
    ]);
  }

  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try { await refreshAll(); } finally { busy = false; }
  }

  function fromHash() {
    const h = new URLSearchParams(window.location.hash.slice(1));
    if (h.get("status")) setFilter(h.get("status"));
    if (h.get("msg")) openDetail(h.get("msg")).catch(failed("Read the message"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#btn-start").addEventListener("click", () => setSwitch(true));
    $("#btn-stop").addEventListener("click", () => setSwitch(false));
    for (const b of document.querySelectorAll("#filters button")) b.addEventListener("click", () => setFilter(b.dataset.filter));
    for (const b of document.querySelectorAll(".count")) b.addEventListener("click", () => setFilter(b.dataset.status));
    $("#btn-older").addEventListener("click", () => {
      if (!state.nextCursor) return;
      state.cursors[state.page + 1] = state.nextCursor;
      state.page++;
      refreshTable().catch(failed("List messages"));
    });
    $("#btn-newer").addEventListener("click", () => {
      if (state.page === 0) return;
      state.page--;
      refreshTable().catch(failed("List messages"));
    });
    $("#detail-close").addEventListener("click", closeDetail);
    $("#detail-retry").addEventListener("click", () => retry(state.selected));
    $("#detail-cancel").addEventListener("click", () => cancel(state.selected));
    const form = $("#create-form");
    form.addEventListener("submit", create);
    form.content.addEventListener("input", () => { $("#content-len").textContent = String([...form.content.value].length); });
    window.addEventListener("hashchange", fromHash);

    const first = new URLSearchParams(window.location.hash.slice(1));
    setFilter(first.get("status") || "all");
    if (first.get("msg")) openDetail(first.get("msg")).catch(failed("Read the message"));
    refreshSwitch().catch(failed("Read the switch"));
    refreshProviders().catch(failed("Read the providers"));
    refreshCounts().catch(failed("Count messages"));
    refreshChart().catch(failed("Read the chart"));
    setInterval(tick, REFRESH_MS);
    setInterval(() => { if (!document.hidden) refreshChart().catch(failed("Read the chart")); }, CHART_REFRESH_MS);
  });
})();
