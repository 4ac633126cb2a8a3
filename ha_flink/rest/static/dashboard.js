// The ha-flink dashboard: plain JavaScript over the REST API of whichever JobManager served the page
// (a standby forwards to the leader). Two views: the cluster (#/) and one job (#/jobs/<id>).
"use strict";

let refreshMs = 1000;  // web.refresh-interval, read from /config at start

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

async function get(path) {
  const answer = await fetch(path, {cache: "no-store"});
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const message = (body.errors || [answer.statusText]).join("; ");
    throw Object.assign(new Error(message), {status: answer.status});
  }
  return body;
}

function duration(ms) {
  if (ms == null || ms < 0) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`;
}

function time(ms) { return ms > 0 ? new Date(ms).toLocaleTimeString() : "-"; }

function bytes(n) {
  if (n == null || n < 0) return "-";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function state(s, id) { return `<span class="state state-${esc(s)}"${id ? ` data-testid="${id}"` : ""}>${esc(s)}</span>`; }

function table(headers, rows, testid) {
  return `<table data-testid="${testid}"><tr>${headers.map(h => `<th>${esc(h)}</th>`).join("")}</tr>` +
    (rows.length ? rows.join("") : `<tr><td colspan="${headers.length}">none</td></tr>`) + "</table>";
}

function haSection(ha) {
  const leader = ha.leader;
  const masters = ha.masters.map(m => `<tr data-testid="master" data-role="${esc(m.role)}">` +
    `<td>${esc(m.address)}</td><td><a href="${esc(m["rest-address"])}">${esc(m["rest-address"])}</a></td>` +
    `<td class="role-${esc(m.role)}">${esc(m.role)}</td><td>${esc(m.pid)}</td></tr>`);
  const history = ha["election-history"].slice(0, 10).map(h => `<tr><td>${time(h.timestamp)}</td>` +
    `<td>${h.leader ? esc(h.leader) : "<i>no leader (election)</i>"}</td><td>${esc(h.session_id || "")}</td></tr>`);
  return `<section><h2>JobManagers</h2>
    <p>Leader: <b data-testid="leader">${leader ? esc(leader["rest-address"]) : "none: election in progress"}</b>
    ${leader ? `since ${time(leader.since)}, session <code data-testid="leader-session">${esc(leader["session-id"])}</code>` : ""}
    · leader changes seen: <b data-testid="leader-changes">${ha["leader-changes"]}</b></p>
    ${ha["masters-error"] ? `<p class="state-FAILED">${esc(ha["masters-error"])}</p>` : ""}
    ${table(["RPC address", "REST / dashboard", "role", "pid"], masters, "masters")}
    <h2>Election history (this JobManager's view)</h2>
    ${table(["time", "leader", "session id"], history, "election-history")}</section>`;
}

async function clusterView() {
  const ha = await get("/cluster/ha");
  header(ha);
  let body = haSection(ha);
  try {
    const [overview, tms, jobs] = await Promise.all([get("/overview"), get("/taskmanagers"), get("/jobs/overview")]);
    const tmRows = tms.taskmanagers.map(t => `<tr data-testid="taskmanager"><td>${esc(t.id)}</td><td>${esc(t.path)}</td>` +
      `<td>${t.slotsNumber}</td><td>${t.freeSlots}</td><td>${duration(t.timeSinceLastHeartbeat)} ago</td></tr>`);
    const jobRows = jobs.jobs.map(j => `<tr data-testid="job" data-job-id="${esc(j.jid)}">` +
      `<td><a href="#/jobs/${esc(j.jid)}">${esc(j.name)}</a></td><td><code>${esc(j.jid)}</code></td>` +
      `<td>${state(j.state, "job-state")}</td><td>${time(j["start-time"])}</td><td>${duration(j.duration)}</td>` +
      `<td>${j.tasks.running}/${j.tasks.total} running</td></tr>`);
    body += `<section><h2>TaskManagers: ${overview.taskmanagers}, slots ${overview["slots-available"]} free of ` +
      `${overview["slots-total"]}</h2>${table(["id", "address", "slots", "free", "last heartbeat"], tmRows, "taskmanagers")}</section>` +
      `<section><h2>Jobs</h2>${table(["name", "id", "state", "started", "duration", "tasks"], jobRows, "jobs")}</section>`;
  } catch (error) {
    body += `<section class="state-FAILED" data-testid="leader-error">${esc(error.message)}</section>`;
  }
  return body;
}

async function jobView(jobId) {
  const ha = await get("/cluster/ha");
  header(ha);
  const job = await get(`/jobs/${encodeURIComponent(jobId)}/dashboard`);
  const m = job.metrics || {};
  const [checkpoints, exceptions] = await Promise.all([
    get(`/jobs/${encodeURIComponent(jobId)}/checkpoints`).catch(() => null),
    get(`/jobs/${encodeURIComponent(jobId)}/exceptions`).catch(() => ({exceptionHistory: {entries: []}}))]);
  const sources = job.vertices.filter(v => !job.plan.nodes.find(n => n.id === v.id).inputs.length);
  const recordsPerSecond = sources.reduce((sum, v) => sum + v.metrics["records-out-per-second"], 0);
  const restored = job["restored-checkpoint"];
  let body = `<p><a href="#/">← cluster</a></p><section><h2>${esc(job.name)} <code>${esc(job.jid)}</code></h2>
    <div class="figures">
      <div class="figure">state<b>${state(job.state, "job-state")}</b></div>
      <div class="figure">uptime<b data-testid="uptime">${duration(m.uptime)}</b></div>
      <div class="figure">records/s (sources)<b data-testid="records-per-second">${Math.round(recordsPerSecond)}</b></div>
      <div class="figure">restarts<b data-testid="restarts">${m.numRestarts ?? 0}</b></div>
      <div class="figure">last restart took<b>${m.numRestarts ? duration(m.restartingTime) : "-"}</b></div>
      <div class="figure">restored from<b data-testid="restored">${restored ? (restored.is_savepoint ? "savepoint" : `checkpoint ${restored.id}`) : "-"}</b></div>
      <div class="figure">served by leader<b data-testid="job-leader">${esc(ha.leader ? ha.leader["rest-address"] : "none")}</b></div>
    </div>
    ${job.failure ? `<pre>${esc(job.failure)}</pre>` : ""}</section>`;
  const graph = job.vertices.map((v, i) => {
    const node = job.plan.nodes.find(n => n.id === v.id);
    const inputs = node.inputs.map(e => `<span class="edge">${esc(e.ship_strategy)} →</span>`).join(" ");
    return `${i ? inputs : ""}<div class="vertex" data-testid="vertex">${esc(v.name)}<br>parallelism ` +
      `<b data-testid="parallelism">${v.parallelism}</b> · ${state(v.status)}</div>`;
  }).join(" ");
  const vertexRows = job.vertices.map(v => `<tr><td>${esc(v.name)}</td><td>${v.parallelism}</td><td>${state(v.status)}</td>` +
    `<td>${v.metrics["read-records"]}</td><td>${v.metrics["write-records"]}</td>` +
    `<td>${v.metrics["records-in-per-second"]}</td><td>${v.metrics["records-out-per-second"]}</td>` +
    `<td>${Math.round(v.metrics["backpressured-ms-per-second"])} ms/s</td></tr>`);
  body += `<section><h2>Task graph</h2><div class="graph" data-testid="graph">${graph}</div>
    ${table(["vertex", "parallelism", "status", "records in", "records out", "in/s", "out/s", "back-pressured"], vertexRows, "vertices")}</section>`;
  if (checkpoints) {
    const c = checkpoints.counts;
    const rows = checkpoints.history.map(h => `<tr data-testid="checkpoint"><td>${h.id}</td>` +
      `<td class="st-${esc(h.status)}">${esc(h.status)}${h.is_savepoint ? " (savepoint)" : ""}</td><td>${time(h.trigger_timestamp)}</td>` +
      `<td>${h.end_to_end_duration} ms</td><td>${bytes(h.checkpointed_size)} / ${bytes(h.state_size)}</td><td>${h.num_acknowledged_subtasks}/${h.num_subtasks}</td>` +
      `<td class="path">${esc(h.external_path || h.failure_message || "")}</td></tr>`);
    body += `<section><h2>Checkpoints: <span data-testid="checkpoints-completed">${c.completed}</span> completed, ` +
      `${c.failed} failed, ${c.in_progress} in progress, restored ${c.restored} times` +
      `${restored ? ` (latest: ${restored.is_savepoint ? "savepoint" : "checkpoint " + restored.id} at ${time(restored.restore_timestamp)})` : ""}</h2>
      ${table(["id", "status", "triggered", "duration", "checkpointed / full size", "acks", "path / failure"], rows, "checkpoint-history")}</section>`;
  }
  const entries = exceptions.exceptionHistory.entries.map(e => `<tr data-testid="exception"><td>${time(e.timestamp)}</td>` +
    `<td>${esc(e.taskName || "")}</td><td>${esc(e.endpoint || "")}</td><td><pre>${esc(e.stacktrace)}</pre></td></tr>`);
  body += `<section><h2>Restarts and exceptions</h2>${table(["time", "task", "location", "exception"], entries, "exceptions")}</section>`;
  return body;
}

function header(ha) {
  const me = ha["answered-by"];
  document.getElementById("answered-by").innerHTML =
    `served by ${esc(me["rest-address"])} (<span class="role-${esc(me.role)}" data-testid="served-by-role">${esc(me.role)}</span>)`;
  document.getElementById("zookeeper").textContent = `ZooKeeper: ${ha.zookeeper.state}`;
  const banner = document.getElementById("banner");
  banner.hidden = !ha["election-in-progress"];
  banner.textContent = "leader election in progress";
}

let generation = 0;  // a refresh started before a newer one (a click, the timer) must not overwrite it

async function refresh() {
  const mine = ++generation;
  const route = location.hash.match(/^#\/jobs\/([^/]+)/);
  let html;
  try {
    html = route ? await jobView(decodeURIComponent(route[1])) : await clusterView();
  } catch (error) {
    html = `<section class="state-FAILED" data-testid="error">${esc(error.message)} (retrying)</section>`;
  }
  if (mine === generation) document.getElementById("view").innerHTML = html;
}

window.addEventListener("hashchange", refresh);
(async function start() {
  try { refreshMs = (await get("/config"))["refresh-interval"] || refreshMs; } catch (error) { /* keep 1 s */ }
  (async function loop() {
    await refresh();
    setTimeout(loop, refreshMs);
  })();
})();
