// Tandem's live page: polls /page.json every 2 s; no build step, no CDN (uPlot is served by
// Tandem from page/vendor/, installed by `make deps`). With --http-token-file the JSON
// endpoints need "Authorization: Bearer TOKEN": the page asks once and keeps it in
// sessionStorage (this tab only).
"use strict";

const POLL_MS = 2000;
const SEGMENTS = ["free", "backup", "active", "abandoned"];
const $ = (id) => document.getElementById(id);
let charts = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function when(stamp, now) {
  if (typeof stamp !== "number") return "an unknown time";
  const text = new Date(stamp * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  return `${text} (${ago(now - stamp)})`;
}

function ago(s) {
  if (s < 0) return `in ${-s} s`;
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

async function fetchJson(path) {
  const headers = {};
  const token = sessionStorage.getItem("tandem-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers, cache: "no-store" });
  if (res.status === 401) {
    $("login").hidden = false;
    throw new Error("this server needs its API token");
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.text || `HTTP ${res.status}`);
  return body;
}

function stateBadge(state) {
  return el("span", { class: `state state-${state}`, "data-state": state }, state);
}

function renderRelationships(rels, now) {
  const box = $("relationships");
  box.replaceChildren();
  if (!rels.length) box.append(el("p", {}, "No failover peer is configured."));
  for (const r of rels) {
    const skew = r["clock-skew"] === null ? "unknown" : `${r["clock-skew"]} s`;
    const age = r["last-contact-age"];
    const rows = [
      ["me", r.local], ["partner", r.partner],
    ].map(([who, side]) => el("tr", { class: `side-${who}` },
      el("td", {}, who), el("td", {}, stateBadge(side.state)),
      el("td", {}, `since ${when(side.since, now)}`)));
    box.append(el("div", { class: "rel", "data-peer": r.name },
      el("strong", {}, `failover peer ${r.name}`), ` (${r.role}), link ${r.link}`,
      el("table", {}, ...rows),
      el("div", {}, `last contact ${typeof age === "number" ? ago(age) : "never"}, ` +
        `clock skew ${skew}, updates queued ${r["queued-updates"]}, unacked ${r["unacked-updates"]}`),
      renderDrift(r.drift), ...autoPartnerDown(r["auto-partner-down"])));
  }
}

function renderDrift(d) {
  // Drift detection (core/failover/drift.py): the peers' configurations compared.
  if (!d) return el("div", {});
  const box = el("div", { class: `drift drift-${d.state}`, "data-drift": d.state });
  if (d.compared === "tandem") {
    box.append(d.drift
      ? el("strong", {}, `CONFIGURATION DRIFT: ${d.count} difference(s) from the partner's file`)
      : `configuration: ${d.state === "agree" ? "the same as the partner's" : d.state}`);
    for (const x of d.differences || []) {
      const here = x.here === null ? "absent" : `${x.here} (${x["here-loc"]})`;
      const peer = x.peer === null ? "absent" : `${x.peer} (${x["peer-loc"]})`;
      box.append(el("div", { class: "drift-item" }, `${x.key}: here ${here}, partner ${peer}`));
    }
  } else {
    const diffs = (d.isc && d.isc.differences) || [];
    box.append(diffs.length ? el("strong", {}, `CONFIGURATION DRIFT: ${diffs.join("; ")}`) : "",
      el("div", {}, d.note || ""));
  }
  return box;
}

// auto-partner-down's probes, witness and fencing (io/autopd.py): one line, when configured.
function autoPartnerDown(apd) {
  if (!apd) return [];
  const probe = apd.probe || {};
  const wit = apd.witness;
  const parts = [`auto-partner-down ${apd.seconds} s: ${apd.summary}`,
    `probes answered ${probe.answered || 0} of ${probe.sent || 0}`];
  if (wit) parts.push(`witness ${wit.address}${wit.granted ? " (grant held)" : ""}`);
  return [el("div", { class: `apd${apd.fenced ? " apd-fenced" : ""}`, "data-apd": apd.summary },
    parts.join("; "))];
}

function renderPools(pools) {
  const box = $("pools");
  box.replaceChildren();
  for (const p of pools) {
    const counts = { ...p.states };
    const bar = el("div", { class: "bar" });
    const legend = el("div", { class: "legend" });
    for (const seg of SEGMENTS) {
      const n = counts[seg] || 0;
      const span = el("span", { class: `seg-${seg}`, title: `${seg} ${n}` });
      span.style.width = `${(100 * n) / p.total}%`;
      bar.append(span);
      legend.append(el("span", { "data-seg": seg }, el("i", { class: `seg-${seg}` }), `${seg} ${n}`));
    }
    const other = p.total - SEGMENTS.reduce((a, s) => a + (counts[s] || 0), 0);
    if (other) legend.append(el("span", {}, `other ${other}`));
    box.append(el("div", { class: "pool", "data-pool": p.pool },
      el("div", {}, `${p.pool}: ${p.total} addresses`), bar, legend));
  }
}

function renderEvents(events, total, now) {
  const list = $("events");
  list.replaceChildren();
  for (const e of events) {
    list.append(el("li", { class: `ev-${e.kind}` },
      el("span", { class: "kind" }, e.kind), `${ago(now - e.t)}: ${e.text}`));
  }
  if (total > events.length) list.append(el("li", {}, `(${total - events.length} older events not kept)`));
}

function makeChart(id, label, stroke) {
  const opts = {
    width: Math.min(560, document.body.clientWidth - 40), height: 160,
    series: [{}, { label, stroke, width: 2 }],
    scales: { x: { time: true } },
  };
  return new uPlot(opts, [[], []], $(id));
}

function renderHistory(h) {
  if (typeof uPlot === "undefined") {
    const note = $("nochart");
    note.hidden = false;
    note.textContent = "The chart library is missing: run `make deps` (it installs uPlot into " +
      "src/tandem/io/page/vendor/), then reload this page.";
    return;
  }
  if (!charts) {
    charts = [makeChart("plot-leases", "leases in use", "#e94"),
              makeChart("plot-pps", "DHCP packets/s", "#36c")];
  }
  charts[0].setData([h.t, h.leases]);
  charts[1].setData([h.t, h.pps]);
}

async function refresh() {
  try {
    const d = await fetchJson("/page.json");
    $("problem").hidden = true;
    $("login").hidden = true;
    $("server").textContent = `tandem ${d.server.version} (${d.server.build}), up ${d.server.uptime} s`;
    $("updated").textContent = `updated ${new Date(d.now * 1000).toISOString().slice(11, 19)} UTC`;
    renderRelationships(d.relationships, d.now);
    renderPools(d.pools);
    renderHistory(d.history);
    renderEvents(d.events, d["events-total"], d.now);
    document.body.dataset.updated = String(d.now);
  } catch (err) {
    $("problem").hidden = false;
    $("problem").textContent = `Cannot read the server: ${err.message} (retrying every 2 s)`;
  }
}

async function runSearch(ev) {
  ev.preventDefault();
  const q = $("q").value;
  const body = $("results").tBodies[0];
  try {
    const r = await fetchJson(`/page/search?q=${encodeURIComponent(q)}`);
    body.replaceChildren();
    for (const l of r.leases) {
      const t = l["user-context"].tandem;
      body.append(el("tr", { "data-ip": l["ip-address"] },
        el("td", {}, l["ip-address"]), el("td", {}, l["hw-address"]), el("td", {}, l.hostname),
        el("td", {}, t["binding-state"]),
        el("td", {}, t.ends ? new Date(t.ends * 1000).toISOString().replace("T", " ").slice(0, 19) : "never")));
    }
    $("results-note").textContent = r.leases.length
      ? (r.more ? "more leases match: showing the first ones" : `${r.leases.length} lease(s)`)
      : `no lease matches ${JSON.stringify(r.query)}`;
  } catch (err) {
    $("results-note").textContent = `search failed: ${err.message}`;
  }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("tandem-token", $("token").value.trim());
  refresh();
});
$("search").addEventListener("submit", runSearch);
refresh();
setInterval(refresh, POLL_MS);
