// The live page's script: it reads the /v1 API with the key kept in this browser and draws
// the runs, one run's plan as a DAG whose subtasks change status as the run's event stream
// says, and the agents. No framework and no build step; everything the API returns is shown
// through textContent or SVG attributes, never parsed as markup (outputs are a model's text).
"use strict";

(() => {
  const KEY = "automatos.apiKey";
  const RUNS_EVERY_MS = 2000;
  const AGENTS_EVERY_MS = 15000;
  const SVG = "http://www.w3.org/2000/svg";
  const NODE = { w: 156, h: 40, gapX: 56, gapY: 14, pad: 12 };
  const NODE_STATUSES = ["pending", "running", "succeeded", "failed", "skipped", "cancelled"];

  const $ = (id) => document.getElementById(id);
  const state = {
    keyRequired: document.body.dataset.keyRequired === "true",
    paused: false, // no usable key: nothing is fetched until one is entered
    epoch: 0, // counts key changes: an answer fetched with another key is dropped
    details: new Map(), // finished runs' records by id (they no longer change)
    selected: null, // the run drawn
    pinned: false, // the user chose it; otherwise the newest running run is followed
    stream: null, // the AbortController of the selected run's event stream
    run: null, // what is known of the selected run
  };

  // Not worth a notice: a refused key (the page asks for another) or a dropped answer.
  class Quiet extends Error {}

  // --- the key, entered once and kept in localStorage -------------------------------------

  function storedKey() {
    try {
      return localStorage.getItem(KEY);
    } catch {
      return null;
    }
  }

  function authHeaders() {
    const key = storedKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function showKey(message) {
    const held = storedKey() !== null;
    $("key-form").hidden = held || !(state.keyRequired || state.paused);
    $("key-held").hidden = !held;
    $("key-error").textContent = message || "";
  }

  function needKey(message) {
    state.paused = true;
    state.epoch += 1;
    try {
      localStorage.removeItem(KEY);
    } catch {}
    showKey(message);
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("key-input").value.trim();
    if (!value) return;
    try {
      localStorage.setItem(KEY, value);
    } catch {
      notice("this browser does not keep the key (localStorage is off)");
    }
    $("key-input").value = "";
    state.paused = false;
    state.epoch += 1;
    showKey("");
    refreshAll();
    if (state.selected) openRun(state.selected, true);
  });

  $("key-forget").addEventListener("click", () => {
    try {
      localStorage.removeItem(KEY);
    } catch {}
    state.epoch += 1;
    stopStream();
    state.details.clear();
    state.selected = null;
    state.run = null;
    $("runs").tBodies[0].replaceChildren();
    $("agents").tBodies[0].replaceChildren();
    drawRun();
    if (state.keyRequired) needKey("");
    else {
      state.paused = false;
      showKey("");
      refreshAll();
    }
  });

  // --- fetching --------------------------------------------------------------------------

  async function api(path) {
    const epoch = state.epoch;
    const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
    if (epoch !== state.epoch) throw new Quiet();
    if (response.status === 401) {
      needKey("that key was refused: enter a valid one");
      throw new Quiet();
    }
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    const body = await response.json();
    if (epoch !== state.epoch) throw new Quiet();
    return body;
  }

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  function report(error) {
    if (!(error instanceof Quiet)) notice(String(error.message || error));
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function every(ms, task) {
    const loop = async () => {
      if (!state.paused) await task().catch(report);
      setTimeout(loop, ms);
    };
    setTimeout(loop, ms);
  }

  // One after the other: a refused key costs one request.
  function refreshAll() {
    refreshRuns()
      .then(refreshAgents)
      .catch(report);
  }

  // --- formatting ------------------------------------------------------------------------

  function parseTime(text) {
    if (!text) return null;
    // the store's times are UTC; SQLite gives them without a zone
    const zoned = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`;
    const ms = Date.parse(zoned);
    return Number.isNaN(ms) ? null : ms;
  }

  function seconds(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return "–";
    if (s < 60) return `${s.toFixed(1)} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  const fixed = (x, digits) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
  const dollars = (x) => (typeof x === "number" ? `$${x.toFixed(4)}` : "–");

  function quality(q) {
    if (!q || typeof q.q !== "number") return "–";
    return `${q.q.toFixed(2)} [${fixed(q.low, 2)}, ${fixed(q.high, 2)}]`;
  }

  function element(tag, text, className) {
    const made = document.createElement(tag);
    if (text !== undefined && text !== null) made.textContent = String(text);
    if (className) made.className = className;
    return made;
  }

  function badge(status) {
    const made = element("span", status, `badge st-${status}`);
    made.dataset.status = status;
    return made;
  }

  // --- the runs --------------------------------------------------------------------------

  async function refreshRuns() {
    const page = await api("/v1/workflows?limit=20");
    const runs = Array.isArray(page) ? page : page.items || []; // the newest page is enough
    let ended = false;
    for (const run of runs) {
      if (run.status !== "running" && !state.details.has(run.id)) {
        const detail = await api(`/v1/workflows/${encodeURIComponent(run.id)}`);
        // a run whose record just ended may still answer with its progress for a moment
        if (detail.status !== "running") state.details.set(run.id, detail);
        ended = true;
      }
    }
    if (ended) refreshAgents().catch(report); // what was learned changes as runs end
    drawRuns(runs);
    $("runs-empty").hidden = runs.length > 0;
    if (!state.pinned && runs.length) {
      // Not chosen by the user: follow the newest running run once the one drawn has ended.
      const live = runs.find((run) => run.status === "running");
      const next = live || (state.selected ? null : runs[0]);
      const busy = state.run !== null && state.run.status === "running";
      if (next && next.id !== state.selected && !busy) openRun(next.id, false);
    }
    notice("");
  }

  function drawRuns(runs) {
    const rows = runs.map((summary) => {
      const detail = state.details.get(summary.id);
      const started = parseTime(summary.started_at);
      const ended = parseTime(summary.finished_at) || Date.now();
      const wall = detail && detail.totals ? detail.totals.wall_time_s : null;
      const level = detail && detail.extra && detail.extra.level ? detail.extra.level.level : "";
      const row = document.createElement("tr");
      row.dataset.runId = summary.id;
      row.dataset.status = summary.status;
      if (summary.id === state.selected) row.classList.add("selected");
      const id = element("td", summary.id.slice(0, 8), "id");
      id.title = summary.id;
      const request = element("td", summary.request, "request");
      request.title = summary.request;
      const status = document.createElement("td");
      status.className = "status";
      status.append(badge(summary.status));
      const duration = wall ?? (started === null ? null : (ended - started) / 1000);
      row.append(
        id,
        request,
        status,
        element("td", level, "level"),
        element("td", seconds(duration), "num duration"),
        element("td", quality(detail && detail.quality), "num quality"),
      );
      row.addEventListener("click", () => {
        state.pinned = true;
        openRun(summary.id, false);
      });
      return row;
    });
    $("runs").tBodies[0].replaceChildren(...rows);
  }

  // --- one run: its plan as a DAG, live ----------------------------------------------------

  function newRun(id) {
    return { id, status: "running", level: "", quality: null, totals: null, nodes: new Map(),
             planned: false, finished: 0, chosen: null, shapes: new Map() };
  }

  function node(run, id) {
    let known = run.nodes.get(id);
    if (!known) {
      // Not in a plan yet: placed after the subtasks that had finished when it appeared,
      // which is where its dependencies are, until the plan says.
      known = { id, status: "pending", deps: [], layer: run.finished, description: "",
                agent: "", result: null, attempt: 0, error: "" };
      run.nodes.set(id, known);
      run.dirty = true;
    }
    return known;
  }

  function setPlan(run, plan) {
    for (const spec of plan.subtasks || []) {
      const known = node(run, spec.id);
      known.deps = Array.from(spec.depends_on || []);
      known.description = spec.description || "";
      known.agent = known.agent || spec.agent || "";
    }
    run.planned = true;
    run.dirty = true;
  }

  function applyDetail(run, detail) {
    if (detail.status) run.status = detail.status;
    if (detail.plan) setPlan(run, detail.plan);
    if (detail.extra && detail.extra.level) run.level = detail.extra.level.level;
    if (detail.quality) run.quality = detail.quality;
    if (detail.totals) run.totals = detail.totals;
    for (const result of detail.results || []) {
      const known = node(run, result.subtask_id);
      known.result = result;
      known.status = result.status;
      known.agent = result.agent || known.agent;
    }
    run.dirty = true;
  }

  function onEvent(run, event) {
    if (event.plan && Array.isArray(event.plan.subtasks)) setPlan(run, event.plan);
    const id = event.subtask_id;
    switch (event.kind) {
      case "level_chosen":
        run.level = event.level;
        break;
      case "subtask_started":
      case "subtask_queued":
      case "subtask_retried": {
        const known = node(run, id);
        known.status = "running";
        known.agent = event.agent || known.agent;
        known.attempt = event.attempt || known.attempt;
        if (event.error) known.error = event.error;
        break;
      }
      case "subtask_finished":
        node(run, id).status = event.status;
        node(run, id).error = event.error || "";
        run.finished += 1;
        break;
      case "subtask_skipped":
        node(run, id).status = "skipped";
        node(run, id).error = event.reason || "";
        run.finished += 1;
        break;
      case "workflow_finished":
        run.status = event.status;
        break;
      default:
        return;
    }
    if (id && !run.dirty) updateNode(run, run.nodes.get(id));
    drawRun();
  }

  async function openRun(id, again) {
    if (state.selected === id && !again) return;
    stopStream();
    state.selected = id;
    const run = newRun(id);
    state.run = run;
    for (const row of $("runs").tBodies[0].rows) {
      row.classList.toggle("selected", row.dataset.runId === id);
    }
    drawRun();
    const controller = new AbortController();
    state.stream = controller;
    try {
      const detail = await api(`/v1/workflows/${encodeURIComponent(id)}`);
      if (controller.signal.aborted) return;
      applyDetail(run, detail);
      drawRun();
      await follow(run, controller.signal);
    } catch (error) {
      if (!controller.signal.aborted) report(error);
    }
  }

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  // EventSource sends no headers, so the stream is read with fetch and parsed here; after a
  // broken connection it resumes with Last-Event-ID from the last event applied.
  async function follow(run, signal) {
    let last = 0;
    let wait = 500;
    for (;;) {
      let ended = false;
      try {
        const headers = authHeaders();
        if (last) headers["Last-Event-ID"] = String(last);
        const url = `/v1/workflows/${encodeURIComponent(run.id)}/events`;
        const response = await fetch(url, { headers, signal, cache: "no-store" });
        if (response.status === 401) {
          needKey("that key was refused: enter a valid one");
          return;
        }
        if (!response.ok) throw new Error(`the event stream answered ${response.status}`);
        if (last) notice(""); // resumed
        for await (const message of serverSentEvents(response.body)) {
          const event = JSON.parse(message.data);
          last = Number(message.id) || last;
          onEvent(run, event);
          if (event.kind === "workflow_finished") ended = true;
        }
        wait = 500;
      } catch (error) {
        if (signal.aborted) return;
        notice(`the event stream broke (${error.message}); resuming`);
      }
      if (signal.aborted) return;
      if (!ended) {
        // the stream closed early: resume, unless the run is no longer running
        const detail = await api(`/v1/workflows/${encodeURIComponent(run.id)}`);
        if (signal.aborted) return;
        if (detail.status === "running") {
          await sleep(wait);
          wait = Math.min(wait * 2, 10000);
          continue;
        }
      }
      // the record now holds the plan, the outputs, tokens and cost
      const detail = await api(`/v1/workflows/${encodeURIComponent(run.id)}`);
      if (signal.aborted) return;
      if (detail.status !== "running") state.details.set(run.id, detail);
      applyDetail(run, detail);
      drawRun();
      notice("");
      refreshAll();
      return;
    }
  }

  async function* serverSentEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = { id: "", event: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const raw of lines) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "") {
          if (message.data.length) yield { ...message, data: message.data.join("\n") };
          message = { id: message.id, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") message.data.push(value);
        else if (field === "id") message.id = value;
        else if (field === "event") message.event = value;
      }
    }
  }

  function svg(tag, attributes) {
    const shape = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) shape.setAttribute(name, value);
    return shape;
  }

  const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

  // Columns by dependency depth (a subtask's dependencies to its left); before the plan is
  // known, by when each subtask appeared.
  function layers(run) {
    const depth = new Map();
    const visit = (known, seen) => {
      if (depth.has(known.id)) return depth.get(known.id);
      let d = run.planned ? 0 : known.layer;
      seen.add(known.id);
      for (const dep of run.planned ? known.deps : []) {
        const before = run.nodes.get(dep);
        if (before && !seen.has(dep)) d = Math.max(d, visit(before, seen) + 1);
      }
      depth.set(known.id, d);
      return d;
    };
    for (const known of run.nodes.values()) visit(known, new Set());
    const columns = [...new Set(depth.values())].sort((a, b) => a - b);
    return columns.map((d) => [...run.nodes.values()].filter((known) => depth.get(known.id) === d));
  }

  function drawRun() {
    const run = state.run;
    const canvas = $("dag");
    if (!run) {
      canvas.replaceChildren();
      $("run-title").textContent = "choose a run";
      $("run-meta").textContent = "";
      $("subtask").hidden = true;
      return;
    }
    $("run-title").textContent = run.id;
    const meta = [`status ${run.status}`];
    if (run.level) meta.push(`level ${run.level}`);
    if (run.quality) meta.push(`Q ${quality(run.quality)}`);
    if (run.totals) {
      meta.push(`${run.totals.tokens_in + run.totals.tokens_out} tokens`);
      meta.push(dollars(run.totals.cost_usd));
      meta.push(seconds(run.totals.wall_time_s));
    }
    $("run-meta").textContent = meta.join(" · ");
    $("run-panel").dataset.status = run.status;
    if (run.dirty) drawGraph(run, canvas);
    showSubtask(run);
  }

  function drawGraph(run, canvas) {
    run.dirty = false;
    run.shapes = new Map();
    const columns = layers(run);
    const where = new Map();
    const tallest = Math.max(1, ...columns.map((column) => column.length));
    columns.forEach((column, x) => {
      const offset = ((tallest - column.length) * (NODE.h + NODE.gapY)) / 2; // centred
      column.forEach((known, y) => {
        where.set(known.id, {
          x: NODE.pad + x * (NODE.w + NODE.gapX),
          y: NODE.pad + offset + y * (NODE.h + NODE.gapY),
        });
      });
    });
    const width = NODE.pad * 2 + Math.max(1, columns.length) * (NODE.w + NODE.gapX) - NODE.gapX;
    const height = NODE.pad * 2 + tallest * (NODE.h + NODE.gapY) - NODE.gapY;
    canvas.setAttribute("width", width);
    canvas.setAttribute("height", height);
    canvas.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const shapes = [];
    for (const known of run.nodes.values()) {
      const to = where.get(known.id);
      for (const dep of known.deps) {
        const from = where.get(dep);
        if (!from) continue;
        const x1 = from.x + NODE.w;
        const y1 = from.y + NODE.h / 2;
        const x2 = to.x;
        const y2 = to.y + NODE.h / 2;
        const bend = (x2 - x1) / 2;
        const path = svg("path", {
          class: "edge",
          d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        });
        path.dataset.from = dep;
        path.dataset.to = known.id;
        shapes.push(path);
      }
    }
    for (const known of run.nodes.values()) {
      const at = where.get(known.id);
      const group = svg("g", { transform: `translate(${at.x},${at.y})`, tabindex: "0", role: "button" });
      group.dataset.subtask = known.id;
      const title = svg("title");
      const label = svg("text", { x: 8, y: 16 });
      label.textContent = clip(known.id, 22);
      const sub = svg("text", { x: 8, y: 31, class: "sub" });
      group.append(title, svg("rect", { width: NODE.w, height: NODE.h, rx: 6 }), label, sub);
      const choose = () => {
        run.chosen = known.id;
        for (const shape of run.shapes.values()) shape.classList.toggle("selected", shape === group);
        showSubtask(run);
      };
      group.addEventListener("click", choose);
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose();
        }
      });
      run.shapes.set(known.id, group);
      updateNode(run, known);
      shapes.push(group);
    }
    canvas.replaceChildren(...shapes);
  }

  function updateNode(run, known) {
    const group = run.shapes.get(known.id);
    if (!group || !known) return;
    const status = NODE_STATUSES.includes(known.status) ? known.status : "pending";
    group.setAttribute("class", `node st-${status}${run.chosen === known.id ? " selected" : ""}`);
    group.dataset.status = status;
    group.setAttribute("aria-label", `${known.id}: ${status}`);
    group.querySelector("title").textContent = known.description
      ? `${known.id}: ${known.description}`
      : known.id;
    group.querySelector("text.sub").textContent = clip(
      known.agent ? `${status} · ${known.agent}` : status,
      26,
    );
  }

  function showSubtask(run) {
    const panel = $("subtask");
    const known = run.chosen ? run.nodes.get(run.chosen) : null;
    panel.hidden = !known;
    if (!known) return;
    const result = known.result || {};
    $("subtask-title").textContent = known.id;
    const facts = [
      ["status", known.status],
      ["agent", result.agent || known.agent || "–"],
      ["description", known.description || "–"],
    ];
    if (known.result) {
      facts.push(
        ["tokens", `${result.tokens_in} in, ${result.tokens_out} out`],
        ["cost", dollars(result.cost_usd)],
        ["latency", seconds(result.latency_s)],
        ["attempts", result.attempts],
      );
    }
    const error = result.error ? `${result.error.type}: ${result.error.message}` : known.error;
    if (error) facts.push(["error", error]);
    const list = facts.flatMap(([name, value]) => [element("dt", name), element("dd", value)]);
    $("subtask-facts").replaceChildren(...list);
    $("subtask-output").textContent = known.result
      ? result.output || "(no output)"
      : "The output, tokens and cost are shown when the run has ended.";
  }

  // --- the agents and what was learned -----------------------------------------------------

  // /v1/agents gives each agent's metrics by task type, "overall" over all of them; its
  // /v1/agents/{name} a history of the scores (Q of each subtask it ran), oldest first.
  function metricsOf(agent) {
    const metrics = agent.metrics || {};
    return metrics.overall || metrics["*"] || {};
  }

  function scores(history) {
    return (history || [])
      .map((point) => point.score ?? point.avg_quality ?? null)
      .filter((q) => typeof q === "number" && Number.isFinite(q));
  }

  function sparkline(values) {
    const width = 120;
    const height = 24;
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "spark" });
    if (!values.length) return element("span", "–", "muted");
    const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
    const points = values.map((q, i) => {
      const y = height - 2 - Math.max(0, Math.min(1, q)) * (height - 4);
      return [2 + i * step, y];
    });
    chart.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" ") }));
    const [x, y] = points[points.length - 1];
    chart.append(svg("circle", { cx: x, cy: y, r: 2 }));
    const title = svg("title");
    title.textContent = `Q of its last ${values.length} subtasks: ${values.map((q) => q.toFixed(2)).join(", ")}`;
    chart.append(title);
    return chart;
  }

  let agentsLoading = null; // one load at a time: a run ending and the timer may both ask

  function refreshAgents() {
    agentsLoading ||= loadAgents().finally(() => {
      agentsLoading = null;
    });
    return agentsLoading;
  }

  async function loadAgents() {
    const answer = await api("/v1/agents?history=true");
    const agents = Array.isArray(answer) ? answer : answer.agents || [];
    const rows = [];
    for (const agent of agents) {
      let history = agent.history;
      if (history === undefined) {
        const one = await api(`/v1/agents/${encodeURIComponent(agent.name)}`);
        history = one.history;
      }
      const m = metricsOf(agent);
      const row = document.createElement("tr");
      row.dataset.agent = agent.name;
      const chart = document.createElement("td");
      chart.append(sparkline(scores(history)));
      const name = element("td", agent.name);
      if (agent.spec && agent.spec.description) name.title = agent.spec.description;
      row.append(
        name,
        element("td", m.total_executions ?? "–", "num"),
        element("td", fixed(m.success_rate, 2), "num"),
        element("td", fixed(m.avg_quality, 2), "num"),
        chart,
        element("td", seconds(m.avg_latency_s), "num"),
        element("td", dollars(m.avg_cost_usd), "num"),
      );
      rows.push(row);
    }
    $("agents").tBodies[0].replaceChildren(...rows);
    $("agents-empty").hidden = rows.length > 0;
  }

  // --- start -------------------------------------------------------------------------------

  if (state.keyRequired && storedKey() === null) needKey("");
  else {
    showKey("");
    refreshAll();
  }
  every(RUNS_EVERY_MS, refreshRuns);
  every(AGENTS_EVERY_MS, refreshAgents);
})();
