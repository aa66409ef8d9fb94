// Vigil console. Every value from the API goes into the page as text (textContent, text nodes,
// SVG <text> content): finding fields are attacker-controlled. Never parsed as HTML, no inline handlers,
// nothing loaded from the network.
"use strict";

const SEVERITIES = ["Low", "Medium", "High", "Critical"];
let session = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "href") node.setAttribute("href", safeHref(v));
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Links only to this console or to the AWS console: never javascript:, data:, or elsewhere.
function safeHref(v) {
  const s = String(v);
  if (s.startsWith("/") && !s.startsWith("//")) return s;
  if (/^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\//.test(s)) return s;
  return "#";
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return append(node, children);
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") {
    opts.headers["X-Vigil-CSRF"] = session ? session.csrf : "";
    opts.headers["Content-Type"] = "application/json";
    if (opts.body !== undefined && typeof opts.body !== "string") opts.body = JSON.stringify(opts.body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) throw new Error((data && data.error) || `${resp.status} ${resp.statusText}`);
  return data;
}

function sevBadge(label, value) {
  return el("span", { class: `sev sev-${SEVERITIES.includes(label) ? label : "Low"}` },
    value === undefined ? label : `${label} (${value})`);
}

function notice(text, isError) {
  return el("div", { class: isError ? "notice error" : "notice", role: isError ? "alert" : "status" }, text);
}

function kv(pairs) {
  const dl = el("dl", { class: "kv" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    append(dl, [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]);
  }
  return dl;
}

function mount(...nodes) {
  const app = document.getElementById("app");
  app.replaceChildren();
  append(app, nodes);
}

function params() { return new URLSearchParams(location.search); }

function go(path) { history.pushState(null, "", path); route(); }

// -- findings ----------------------------------------------------------------------------------
async function findingsPage() {
  const p = params();
  const filters = p.getAll("filter");
  const sort = p.get("sort") || "updatedAt";
  const order = p.get("order") || "desc";
  const page = Number(p.get("page") || "1");
  const size = p.get("size") || "25";
  const archived = p.get("archived") === "1";

  const box = el("textarea", { "aria-label": "filter", placeholder: "one per line: severity >= 7 · type = Execution:Runtime/ReverseShell · resource.instanceDetails.tags.key = Role · service.archived = true", rows: 2 });
  box.value = filters.join("\n");
  const showArchived = el("input", { type: "checkbox", id: "archived", checked: archived });
  const sizeSel = el("select", { "aria-label": "page size" }, ["10", "25", "50", "100"].map((n) => el("option", { value: n, selected: n === size }, n)));
  function query(changes) {
    const q = new URLSearchParams();
    const state = Object.assign({ filters: box.value.split("\n").map((s) => s.trim()).filter(Boolean), sort, order, page: 1, size: sizeSel.value, archived: showArchived.checked }, changes);
    state.filters.forEach((f) => q.append("filter", f));
    q.set("sort", state.sort); q.set("order", state.order); q.set("page", String(state.page)); q.set("size", state.size);
    if (state.archived) q.set("archived", "1");
    if (p.get("id") && changes && changes.id !== null) q.set("id", changes.id || p.get("id"));
    return q;
  }
  const status = el("div");
  const bar = el("div", { class: "bar" }, box,
    el("label", {}, showArchived, " include archived"), sizeSel,
    el("button", { class: "primary", onclick: () => go(`/findings?${query()}`) }, "Apply filter"),
    el("button", { onclick: async () => {
      status.replaceChildren(notice("Generating sample findings…"));
      try {
        const r = await api("/api/findings/samples", { method: "POST", body: {} });
        status.replaceChildren(notice(`Stored ${r.written} sample findings (titles start with [SAMPLE]).`));
        route();
      } catch (e) { status.replaceChildren(notice(e.message, true)); }
    } }, "Generate sample findings"));

  const apiq = new URLSearchParams();
  filters.forEach((f) => apiq.append("filter", f));
  apiq.set("sort", sort); apiq.set("order", order); apiq.set("page", String(page)); apiq.set("size", size);
  if (archived) apiq.set("archived", "1");
  let data;
  try { data = await api(`/api/findings?${apiq}`); } catch (e) {
    mount(el("h1", {}, "Findings"), bar, status, notice(e.message, true)); return;
  }
  const cols = [["severity", "Severity"], ["type", "Finding type"], ["instance", "Resource"], ["count", "Count"], ["lastSeen", "Last seen"], [null, "Title"]];
  const head = el("tr", {}, cols.map(([key, label]) => el("th", { scope: "col" }, key
    ? el("button", { class: "sort", onclick: () => go(`/findings?${query({ sort: key, order: sort === key && order === "desc" ? "asc" : "desc" })}`) }, label + (sort === key ? (order === "desc" ? " ▼" : " ▲") : ""))
    : label)));
  const detail = el("div", { class: "panel", id: "detail" }, el("p", { class: "muted" }, "Select a finding to see its details."));
  const rows = data.items.map((r) => {
    const tr = el("tr", { class: "clickable", "data-id": r.id, tabindex: 0 },
      el("td", {}, sevBadge(r.severityLabel, r.severity)),
      el("td", {}, r.type, r.sample ? el("span", { class: "tag" }, "sample") : null, r.archived ? el("span", { class: "tag" }, "archived") : null),
      el("td", {}, el("a", { href: `/timeline?instance=${encodeURIComponent(r.instance)}`, onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); go(`/timeline?instance=${encodeURIComponent(r.instance)}`); } }, r.instance)),
      el("td", {}, r.count), el("td", {}, r.lastSeen), el("td", {}, r.title));
    const open = () => {
      document.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
      tr.classList.add("selected");
      const q = params(); q.set("id", r.id); history.replaceState(null, "", `/findings?${q}`);
      showFinding(r.id, detail);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
    return tr;
  });
  const pages = Math.max(1, Math.ceil(data.total / data.size));
  const pager = el("div", { class: "pager" },
    el("button", { disabled: page <= 1, onclick: () => go(`/findings?${query({ page: page - 1 })}`) }, "‹ Previous"),
    el("span", {}, `page ${page} of ${pages} · ${data.total} findings`),
    el("button", { disabled: page >= pages, onclick: () => go(`/findings?${query({ page: page + 1 })}`) }, "Next ›"),
    el("span", { class: "legend" }, SEVERITIES.map((s) => el("span", {}, el("span", { class: `sw sw-${s}` }), `${s} ${data.counts[s] || 0}`))));
  mount(el("h1", {}, "Findings"), bar, status,
    el("div", { class: "layout" },
      el("div", {}, el("table", { "aria-label": "findings" }, el("thead", {}, head), el("tbody", {}, rows)), pager),
      detail));
  if (p.get("id")) showFinding(p.get("id"), detail);
}

function processTree(proc, context) {
  // lineage: nearest parent first (GuardDuty); drawn root first, the finding's process last
  const chain = [...(proc.lineage || [])].reverse();
  const line = (p, hit) => el("span", { class: hit ? "proc hit" : "proc" },
    `${p.name || "?"} (pid ${p.pid ?? "?"}) ${p.executablePath || ""}${p.userId !== undefined ? ` uid ${p.userId}` : ""}`);
  const root = el("ul", { class: "tree", "aria-label": "process lineage" });
  let level = root;
  for (const p of chain) {
    const li = el("li", {}, line(p, false));
    const ul = el("ul");
    li.appendChild(ul); level.appendChild(li); level = ul;
  }
  const cmd = context && context.commandLineExample;
  level.appendChild(el("li", {}, line(proc, true), cmd ? el("div", { class: "proc cmdline" }, cmd) : null));
  return root;
}

async function showFinding(id, panel) {
  panel.replaceChildren(el("p", {}, "Loading…"));
  let d;
  try { d = await api(`/api/findings/${encodeURIComponent(id)}`); } catch (e) { panel.replaceChildren(notice(e.message, true)); return; }
  const f = d.finding, r = d.row, svc = f.service || {};
  const inst = (f.resource || {}).instanceDetails || {};
  const rt = svc.runtimeDetails || {};
  const status = el("div");
  const act = async (label, fn) => {
    status.replaceChildren(notice(`${label}…`));
    try { const msg = await fn(); status.replaceChildren(msg instanceof Node ? msg : notice(msg)); } catch (e) { status.replaceChildren(notice(e.message, true)); }
  };
  const rule = el("textarea", { class: "json", "aria-label": "suppression rule" });
  rule.value = JSON.stringify(d.suppression, null, 2);
  const ruleBox = el("div", { hidden: true }, el("h2", {}, "Suppress findings like this"),
    el("p", { class: "muted" }, "A suppression rule (GuardDuty CreateFilter JSON, Action ARCHIVE): edit it, then save. Matching new findings are stored archived and never published."),
    rule, el("button", { class: "primary", onclick: () => act("Saving rule", async () => {
      let doc; try { doc = JSON.parse(rule.value); } catch (e) { throw new Error(`not JSON: ${e.message}`); }
      const saved = await api("/api/rules", { method: "POST", body: doc });
      return `Rule ${saved.Name} saved (rank ${saved.Rank}).`;
    }) }, "Save rule"));
  const actions = el("div", { class: "bar" },
    r.archived
      ? el("button", { onclick: () => act("Unarchiving", async () => { await api("/api/findings/unarchive", { method: "POST", body: { ids: [id] } }); showFinding(id, panel); return "Unarchived."; }) }, "Unarchive")
      : el("button", { onclick: () => act("Archiving", async () => { await api("/api/findings/archive", { method: "POST", body: { ids: [id] } }); showFinding(id, panel); return "Archived."; }) }, "Archive"),
    el("button", { onclick: () => act("Recording feedback", async () => { await api("/api/findings/feedback", { method: "POST", body: { ids: [id], value: "USEFUL", comment: "" } }); return "Feedback: useful."; }) }, "Useful"),
    el("button", { onclick: () => act("Recording feedback", async () => { const c = prompt("Why is it not useful? (optional)") || ""; await api("/api/findings/feedback", { method: "POST", body: { ids: [id], value: "NOT_USEFUL", comment: c } }); return "Feedback: not useful."; }) }, "Not useful"),
    el("button", { onclick: () => { ruleBox.hidden = !ruleBox.hidden; } }, "Suppress findings like this"),
    el("button", { class: "danger", disabled: !r.instance, onclick: () => {
      if (!confirm(`Start the response workflow for ${r.instance}? Triage decides (approval, dry run and protected tag apply).`)) return;
      act("Starting triage", async () => {
        const x = await api(`/api/findings/${encodeURIComponent(id)}/isolate`, { method: "POST", body: {} });
        return el("div", { class: "notice", role: "status" }, "Triage started (the policy decides; approvals are on the Response page): ",
          x.link ? el("a", { href: x.link, target: "_blank", rel: "noopener noreferrer" }, x.name) : el("a", { href: "/response" }, x.name));
      });
    } }, "Isolate instance…"));
  const det = d.detection;
  const tags = (inst.tags || []).map((t) => el("span", { class: "tag" }, `${t.key}=${t.value}`));
  const nics = (inst.networkInterfaces || []).map((n) => el("div", { class: "proc" },
    [n.networkInterfaceId, n.privateIpAddress, n.publicIp, n.privateDnsName, n.vpcId, n.subnetId].filter(Boolean).join(" · "),
    (n.securityGroups || []).map((g) => el("span", { class: "tag" }, `${g.groupId || ""} ${g.groupName || ""}`))));
  panel.replaceChildren();
  append(panel, [
    el("h2", {}, f.title || f.type),
    el("p", {}, sevBadge(r.severityLabel, r.severity), " ", f.type, r.sample ? el("span", { class: "tag" }, "sample") : null, r.archived ? el("span", { class: "tag" }, "archived") : null),
    actions, status, ruleBox,
    kv([["finding id", f.id], ["count", svc.count], ["first seen", svc.eventFirstSeen], ["last seen", svc.eventLastSeen], ["created", f.createdAt], ["updated", f.updatedAt], ["resource role", svc.resourceRole], ["confidence", f.confidence]]),
    Object.keys(d.actions || {}).length ? kv(Object.entries(d.actions)) : null,
    el("h2", {}, "Process"),
    rt.process ? processTree(rt.process, rt.context) : el("p", { class: "muted" }, "No process (an EC2 finding from flow logs, DNS logs or CloudTrail)."),
    rt.context ? el("h2", {}, "Runtime context") : null,
    rt.context ? kv(Object.entries(rt.context)) : null,
    el("h2", {}, "Instance"),
    kv([["instance", inst.instanceId], ["type", inst.instanceType], ["image", inst.imageId], ["state", inst.instanceState], ["availability zone", inst.availabilityZone], ["launched", inst.launchTime]]),
    el("p", {}, el("a", { href: `/timeline?instance=${encodeURIComponent(inst.instanceId || "")}` }, "Timeline of this instance")),
    tags.length ? el("div", {}, tags) : null, nics,
    det ? el("h2", {}, "Runbook") : null,
    det ? el("p", {}, det.runbook) : null,
    det ? kv([["description", det.description], ["MITRE ATT&CK", det.mitre.join(", ")], ["maturity", det.maturity], ["false positives", det.falsePositives.join("; ")]]) : null,
    el("h2", {}, "Raw JSON"),
    el("pre", { "aria-label": "raw JSON" }, JSON.stringify(f, null, 2))]);
}

// -- charts (own SVG, no library) -------------------------------------------------------------
function stackedDays(days) {
  const w = 620, h = 180, pad = 24, bw = (w - pad) / Math.max(days.length, 1);
  const max = Math.max(1, ...days.map((d) => SEVERITIES.reduce((a, s) => a + d[s], 0)));
  const g = svg("svg", { viewBox: `0 0 ${w} ${h + 20}`, width: "100%", role: "img", "aria-label": "findings by severity per day" });
  g.appendChild(svg("text", { x: 0, y: 10 }, String(max)));
  days.forEach((d, i) => {
    let y = h;
    for (const s of SEVERITIES) {
      const bh = (d[s] / max) * (h - 14);
      if (bh > 0) { y -= bh; g.appendChild(svg("rect", { x: pad + i * bw + 2, y, width: bw - 4, height: bh, class: `fill-${s}` }, svg("title", {}, `${d.day}: ${d[s]} ${s}`))); }
    }
    if (i % Math.ceil(days.length / 7) === 0) g.appendChild(svg("text", { x: pad + i * bw, y: h + 14 }, d.day.slice(5)));
  });
  return g;
}

function hbars(pairs, fillClass, fmt) {
  const w = 620, row = 20, label = 260;
  const max = Math.max(1e-9, ...pairs.map((p) => p[1]));
  const g = svg("svg", { viewBox: `0 0 ${w} ${pairs.length * row + 4}`, width: "100%", role: "img" });
  pairs.forEach(([name, v, cls], i) => {
    g.appendChild(svg("text", { x: 0, y: i * row + 14 }, String(name).slice(0, 45)));
    g.appendChild(svg("rect", { x: label, y: i * row + 3, width: Math.max(1, (v / max) * (w - label - 90)), height: row - 6, class: cls || fillClass }));
    g.appendChild(svg("text", { x: label + Math.max(1, (v / max) * (w - label - 90)) + 4, y: i * row + 14 }, fmt ? fmt(v) : String(v)));
  });
  return g;
}

const usd = (v) => `$${Number(v).toFixed(2)}`;

async function summaryPage() {
  let s;
  try { s = await api("/api/summary"); } catch (e) { mount(el("h1", {}, "Summary"), notice(e.message, true)); return; }
  const cov = s.coverage || {}, use = s.usage || {};
  const unhealthy = (cov.instances || []).filter((c) => c.status === "UNHEALTHY");
  mount(el("h1", {}, "Summary"),
    el("div", { class: "cards" },
      SEVERITIES.slice().reverse().map((lab) => el("div", { class: "card" }, sevBadge(lab), el("div", { class: "n" }, String((s.bySeverity || {})[lab] || 0)))),
      el("div", { class: "card" }, el("div", { class: "muted" }, "active / archived"), el("div", { class: "n" }, `${s.active} / ${s.archived}`)),
      el("div", { class: "card" }, el("div", { class: "muted" }, "coverage"), el("div", { class: "n" }, cov.healthyPercent === null || cov.healthyPercent === undefined ? "–" : `${cov.healthyPercent} %`)),
      el("div", { class: "card" }, el("div", { class: "muted" }, `Vigil vs GuardDuty, ${use.days || 30} days`), el("div", { class: "n" }, use.unavailable ? "–" : `${usd(use.vigilUsdBusy)} vs ${usd(use.guarddutyUsd)}`))),
    el("h2", {}, "Findings by severity, per day"),
    el("div", { class: "legend" }, SEVERITIES.map((x) => el("span", {}, el("span", { class: `sw sw-${x}` }), x))),
    stackedDays(s.byDay || []),
    el("h2", {}, "Findings by type"),
    (s.byType || []).length ? hbars(s.byType, "fill-High") : el("p", { class: "muted" }, "No active findings."),
    el("h2", {}, "Most affected instances"),
    el("table", {}, el("tbody", {}, (s.topInstances || []).map(([i, n]) => el("tr", {}, el("td", {}, el("a", { href: `/timeline?instance=${encodeURIComponent(i)}` }, i)), el("td", {}, `${n} findings`))))),
    el("h2", {}, "Unhealthy instances"),
    unhealthy.length ? el("table", {}, el("tbody", {}, unhealthy.map((c) => el("tr", {}, el("td", {}, c.instanceId), el("td", { class: "UNHEALTHY" }, c.status), el("td", {}, c.issue))))) : el("p", { class: "muted" }, cov.unavailable || "None."),
    el("h2", {}, "Cost this period"),
    use.unavailable ? el("p", { class: "muted" }, use.unavailable) : hbars([["Vigil (busy hosts)", use.vigilUsdBusy, "fill-vigil"], ["Vigil (quiet hosts)", use.vigilUsdQuiet, "fill-vigil"], ["GuardDuty Runtime Monitoring", use.guarddutyUsd, "fill-gd"]], "fill-vigil", usd));
}

// -- timeline ----------------------------------------------------------------------------------
async function timelinePage() {
  const instance = params().get("instance") || "";
  if (!instance) { mount(el("h1", {}, "Timeline"), el("p", {}, "Open an instance from the findings table.")); return; }
  let t;
  try { t = await api(`/api/timeline/${encodeURIComponent(instance)}`); } catch (e) { mount(el("h1", {}, "Timeline"), notice(e.message, true)); return; }
  const d = t.details || {};
  mount(el("h1", {}, `Timeline of ${t.instance}`),
    kv([["type", d.instanceType], ["image", d.imageId], ["state", d.instanceState]]),
    el("div", {}, (d.tags || []).map((x) => el("span", { class: "tag" }, `${x.key}=${x.value}`))),
    el("h2", {}, "Attack sequence"),
    t.sequence.length ? el("p", { class: "seq" }, t.sequence.map((s, i) => [i ? " → " : "", el("span", { class: "tag" }, s)])) : el("p", { class: "muted" }, "No active findings."),
    el("h2", {}, `${t.events.length} findings, oldest first`),
    el("ol", { class: "timeline" }, t.events.map((e) => el("li", {},
      el("div", { class: "muted" }, `${e.firstSeen} … ${e.lastSeen} · ×${e.count}`),
      el("div", {}, sevBadge(e.severityLabel, e.severity), " ", el("a", { href: `/findings?id=${encodeURIComponent(e.id)}&archived=1` }, e.type), e.archived ? el("span", { class: "tag" }, "archived") : null),
      el("div", {}, e.title), e.mitre.length ? el("div", { class: "muted" }, `ATT&CK ${e.mitre.join(", ")}`) : null))));
}

// -- coverage, usage ---------------------------------------------------------------------------
async function coveragePage() {
  let c;
  try { c = await api("/api/coverage"); } catch (e) { mount(el("h1", {}, "Coverage"), notice(e.message, true)); return; }
  const by = (c.statistics || {}).countByCoverageStatus || {};
  mount(el("h1", {}, "Runtime coverage (EC2)"),
    el("p", {}, `${c.instances.length} instances: HEALTHY ${by.HEALTHY || 0}, UNHEALTHY ${by.UNHEALTHY || 0}`, c.healthyPercent === null ? "" : ` (${c.healthyPercent} % healthy), as of the last scheduled evaluation`),
    el("table", { "aria-label": "coverage" }, el("thead", {}, el("tr", {}, ["Instance", "Type", "Status", "Issue", "Agent", "Hostname", "Kernel", "Last heartbeat", "Warnings"].map((h) => el("th", {}, h)))),
      el("tbody", {}, c.instances.map((i) => el("tr", {}, el("td", {}, el("a", { href: `/timeline?instance=${encodeURIComponent(i.instanceId)}` }, i.instanceId)), el("td", {}, i.instanceType), el("td", { class: i.status }, i.status), el("td", {}, i.issue), el("td", {}, i.agentVersion), el("td", {}, i.hostname), el("td", {}, i.kernel), el("td", {}, i.lastHeartbeat || "never"), el("td", {}, i.warnings.join("; ")))))));
}

async function usagePage() {
  const days = params().get("days") || "30";
  let u;
  try { u = await api(`/api/usage?days=${encodeURIComponent(days)}`); } catch (e) { mount(el("h1", {}, "Usage"), notice(e.message, true)); return; }
  const perDay = Object.entries(u.vcpuHoursPerDay || {});
  mount(el("h1", {}, `Usage and cost, ${u.days} days (${u.since} … ${u.until})`),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("div", { class: "muted" }, "monitored vCPU-hours"), el("div", { class: "n" }, u.vcpuHours.toFixed(1))),
      el("div", { class: "card" }, el("div", { class: "muted" }, "Vigil, period (quiet … busy)"), el("div", { class: "n" }, `${usd(u.vigilUsdQuiet)} … ${usd(u.vigilUsdBusy)}`)),
      el("div", { class: "card" }, el("div", { class: "muted" }, "GuardDuty, period"), el("div", { class: "n" }, usd(u.guarddutyUsd))),
      el("div", { class: "card" }, el("div", { class: "muted" }, "30-day month: Vigil vs GuardDuty"), el("div", { class: "n" }, `${usd(u.vigilMonthUsdBusy)} vs ${usd(u.guarddutyMonthUsd)}`))),
    el("p", { class: "muted" }, "Vigil's cost is an estimate from the rates make bench-cost measured (docs/cost.md); GuardDuty's is its published Runtime Monitoring price for the same vCPU-hours."),
    el("h2", {}, "vCPU-hours per day"),
    perDay.length ? hbars(perDay.map(([d, v]) => [d, v]), "fill-Low", (v) => v.toFixed(1)) : el("p", { class: "muted" }, "No usage recorded."),
    el("h2", {}, "Per instance"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Instance", "vCPUs", "Heartbeats", "vCPU-hours"].map((h) => el("th", {}, h)))),
      el("tbody", {}, u.instances.map((i) => el("tr", {}, el("td", {}, i.instanceId), el("td", {}, i.vcpus), el("td", {}, i.heartbeats), el("td", {}, i.vcpuHours))))));
}

// -- suppression rules -------------------------------------------------------------------------
function criteriaText(c) {
  return Object.entries((c || {}).Criterion || {}).map(([path, cond]) => Object.entries(cond).map(([op, v]) => `${path} ${op} ${JSON.stringify(v)}`).join(" AND ")).join(" AND ");
}

async function rulesPage() {
  let r;
  try { r = await api("/api/rules"); } catch (e) { mount(el("h1", {}, "Suppression rules"), notice(e.message, true)); return; }
  const status = el("div");
  const editor = el("textarea", { class: "json", "aria-label": "rule JSON" });
  let editing = null;
  const save = el("button", { class: "primary", onclick: async () => {
    let doc; try { doc = JSON.parse(editor.value); } catch (e) { status.replaceChildren(notice(`not JSON: ${e.message}`, true)); return; }
    try {
      if (editing) { await api(`/api/rules/${encodeURIComponent(editing)}`, { method: "PUT", body: doc }); }
      else { await api("/api/rules", { method: "POST", body: doc }); }
      route();
    } catch (e) { status.replaceChildren(notice(e.message, true)); }
  } }, "Save");
  const title = el("h2", {}, "New rule");
  const blank = { Name: "my-rule", Description: "", Action: "ARCHIVE", FindingCriteria: { Criterion: { type: { Equals: ["Discovery:Runtime/SuspiciousCommand"] } } } };
  editor.value = JSON.stringify(blank, null, 2);
  mount(el("h1", {}, "Suppression rules and saved filters"),
    el("p", { class: "muted" }, "GuardDuty filters (CreateFilter JSON); Action ARCHIVE makes a suppression rule, tried in Rank order. Every change is published on the stack's bus."),
    r.problems.map((p) => notice(p, true)), status,
    el("table", { "aria-label": "rules" }, el("thead", {}, el("tr", {}, ["Rank", "Name", "Action", "Criteria", "Updated", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, r.rules.map((f) => el("tr", {}, el("td", {}, f.Rank), el("td", {}, f.Name), el("td", {}, f.Action), el("td", { class: "proc" }, criteriaText(f.FindingCriteria)), el("td", {}, `${f.UpdatedAt} by ${f.UpdatedBy}`),
        el("td", {},
          el("button", { onclick: () => { editing = f.Name; title.textContent = `Edit ${f.Name}`; editor.value = JSON.stringify({ Description: f.Description || "", Action: f.Action, Rank: f.Rank, FindingCriteria: f.FindingCriteria }, null, 2); editor.focus(); } }, "Edit"),
          el("button", { class: "danger", onclick: async () => {
            if (!confirm(`Delete rule ${f.Name}? Findings it archived stay archived.`)) return;
            try { await api(`/api/rules/${encodeURIComponent(f.Name)}`, { method: "DELETE" }); route(); } catch (e) { status.replaceChildren(notice(e.message, true)); }
          } }, "Delete")))))),
    title, editor, el("div", { class: "bar" }, save, el("button", { onclick: () => { editing = null; title.textContent = "New rule"; editor.value = JSON.stringify(blank, null, 2); } }, "New")));
}

// -- response ----------------------------------------------------------------------------------
async function responsePage() {
  let r;
  try { r = await api("/api/response"); } catch (e) { mount(el("h1", {}, "Response"), notice(e.message, true)); return; }
  const status = el("div");
  const answer = async (x, approve) => {
    const reason = prompt(approve ? "Approve isolation: reason (recorded)" : "Deny isolation: reason (recorded)");
    if (reason === null) return;
    try { await api(`/api/response/${approve ? "approve" : "deny"}`, { method: "POST", body: { execution: x.arn, reason } }); route(); }
    catch (e) { status.replaceChildren(notice(e.message, true)); }
  };
  const pending = r.executions.filter((x) => x.pending);
  mount(el("h1", {}, "Response"),
    el("p", { class: "muted" }, `${pending.length} awaiting approval · newest first`), status,
    el("table", { "aria-label": "executions" }, el("thead", {}, el("tr", {}, ["Started", "Workflow", "Finding", "Instance", "Decision", "Outcome", "Execution", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, r.executions.map((x) => el("tr", {}, el("td", {}, String(x.started).slice(0, 19).replace("T", " ")), el("td", {}, String(x.stateMachine).replace(/^vigil-|-[A-Z0-9]{8,}$/g, "")),
        el("td", {}, x.findingId ? el("a", { href: `/findings?id=${encodeURIComponent(x.findingId)}&archived=1` }, `${x.findingType} (${String(x.findingId).slice(0, 8)})`) : x.findingType),
        el("td", {}, x.instanceId), el("td", {}, x.decision), el("td", {}, x.outcome),
        el("td", {}, x.link ? el("a", { href: x.link, target: "_blank", rel: "noopener noreferrer" }, x.name) : x.name),
        el("td", {}, x.pending ? [el("button", { class: "primary", "aria-label": `Approve ${x.name}`, onclick: () => answer(x, true) }, "Approve"), el("button", { class: "danger", "aria-label": `Deny ${x.name}`, onclick: () => answer(x, false) }, "Deny")] : null))))));
}

// -- routing -----------------------------------------------------------------------------------
const PAGES = { "/": summaryPage, "/summary": summaryPage, "/findings": findingsPage, "/timeline": timelinePage, "/coverage": coveragePage, "/usage": usagePage, "/rules": rulesPage, "/response": responsePage };

async function route() {
  const path = location.pathname;
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === path));
  const page = PAGES[path] || findingsPage;
  try { await page(); } catch (e) { mount(notice(`This page failed: ${e.message}`, true)); }
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a");
  if (!a || a.target === "_blank" || ev.defaultPrevented) return;
  const href = a.getAttribute("href");
  if (href && href.startsWith("/") && !href.startsWith("//")) { ev.preventDefault(); go(href); }
});
window.addEventListener("popstate", route);

(async () => {
  try {
    session = await api("/api/session");
    document.getElementById("stack").textContent = `${session.stack || "stack"} · ${session.region}${session.offline ? " · offline" : ""}`;
  } catch (e) { mount(notice(e.message, true)); return; }
  route();
})();
