// The Sluice web UI: plain browser JavaScript, no build step. Reads the JSON API of cli/ui/server.ts,
// stays live through server-sent events (/api/stream), draws charts with uPlot (served from
// node_modules) and the lineage graph as hand-laid SVG. Every value from the store goes into the
// page as text (textContent), never as HTML.
/* global uPlot */

const SVG_NS = 'http://www.w3.org/2000/svg';
const main = document.getElementById('main');
const problemBox = document.getElementById('problem');
const liveBadge = document.getElementById('live');
const storeLabel = document.getElementById('store');

const state = { overview: null, live: [], charts: [], route: '', deadCount: -1 };

// ---------- helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');
function timeOfDay(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
function fmtMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
const fmtCount = (n) => Math.round(n).toLocaleString('en-US');
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
function fmtUsd(x) {
  if (x === 0) return '$0';
  if (x >= 1) return `$${x.toFixed(2)}`;
  return `$${x.toPrecision(2)}`;
}
function percentile(values, q) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function api(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${path}: the server answered ${res.status} without JSON`);
  }
  if (!res.ok || body.error) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

function showProblem(message) {
  problemBox.hidden = !message;
  problemBox.textContent = message || '';
}

function tag(text, level) {
  return h('span', { class: `tag ${level || ''}` }, text);
}

function table(columns, rows, onRow) {
  const head = h(
    'tr',
    null,
    columns.map((c) => h('th', { class: c.num ? 'num' : '' }, c.label)),
  );
  const body = rows.map((r) =>
    h(
      'tr',
      { class: onRow ? 'click' : '', onclick: onRow ? () => onRow(r) : undefined },
      columns.map((c) =>
        h('td', { class: [c.num ? 'num' : '', c.wrap ? 'wrap' : ''].join(' ') }, c.value(r)),
      ),
    ),
  );
  return h('table', null, h('thead', null, head), h('tbody', null, body));
}

function facts(pairs) {
  return h(
    'div',
    { class: 'facts' },
    pairs.map(([label, value]) => h('div', null, h('b', null, value), h('span', null, label))),
  );
}

// ---------- live stream ----------

function connect() {
  const es = new EventSource('/api/stream');
  es.addEventListener('open', () => {
    liveBadge.textContent = 'live';
    liveBadge.className = 'live on';
  });
  es.addEventListener('error', () => {
    liveBadge.textContent = 'reconnecting…';
    liveBadge.className = 'live off';
  });
  es.addEventListener('overview', (e) => {
    const data = JSON.parse(e.data);
    state.live = data.live || [];
    if (data.error) {
      state.overview = null;
      showProblem(data.error);
    } else {
      state.overview = data;
      showProblem(data.problems?.length ? data.problems.join('\n') : '');
      storeLabel.textContent = data.store;
    }
    if (state.route === 'overview') renderOverview();
    else if (state.route === 'events') renderEvents();
    else if (state.route === 'deadletters' && state.overview) {
      const dead = state.overview.batches.reduce((n, b) => n + b.deadLetters, 0);
      if (dead !== state.deadCount) renderDeadLetters();
    }
  });
}

// ---------- overview (Spark's Streaming tab) ----------

function destroyCharts() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

function chart(parent, title, unit, xs, ys, color, intervalMs) {
  const width = Math.max(300, parent.clientWidth - 18);
  const series = [
    {},
    { label: title, stroke: color, fill: `${color}22`, width: 1.5, points: { show: xs.length < 60 } },
  ];
  const data = [xs, ys];
  if (intervalMs !== undefined) {
    series.push({
      label: 'batch interval',
      stroke: '#d62728',
      dash: [5, 3],
      width: 1,
      points: { show: false },
    });
    data.push(xs.map(() => intervalMs));
  }
  const plot = new uPlot(
    {
      width,
      height: 170,
      series,
      axes: [
        {},
        { values: (_u, ticks) => ticks.map((v) => (unit === 'ms' ? fmtMs(v) : fmtCount(v))), size: 64 },
      ],
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
    },
    data,
    parent,
  );
  state.charts.push(plot);
}

function renderOverview() {
  destroyCharts();
  const o = state.overview;
  main.replaceChildren();
  if (!o) {
    main.append(h('p', { class: 'muted' }, 'Waiting for the store… (the message above says why)'));
    return;
  }
  const rows = o.batches;
  const intervalS = o.batchIntervalMs / 1000;
  const recent = rows.slice(-60);
  const avg = (f) => (recent.length ? recent.reduce((n, b) => n + f(b), 0) / recent.length : 0);
  main.append(
    h('h2', null, 'Streaming statistics'),
    facts([
      ['batch interval', fmtMs(o.batchIntervalMs)],
      ['committed batches', fmtCount(o.committed)],
      ['received, not committed', String(o.uncommitted.length)],
      ['input rate (last 60)', `${fmtCount(avg((b) => b.records) / intervalS)}/s`],
      ['processing (last 60)', fmtMs(avg((b) => b.processingMs))],
      ['scheduling delay (last 60)', fmtMs(avg((b) => b.schedulingDelayMs))],
      ['streams', o.streams.join(', ') || '-'],
      ['outputs', o.outputs.join(', ') || '-'],
    ]),
  );
  if (rows.length === 0) {
    main.append(
      h('div', { class: 'notice', id: 'empty' }, 'No committed batch yet: this page updates as they commit.'),
    );
  }
  const charts = h('div', { class: 'charts' });
  main.append(charts);
  const xs = rows.map((b) => b.batchTimeMs / 1000);
  const specs = [
    ['Input rate', 'records/s', rows.map((b) => b.records / intervalS), '#4c78a8'],
    ['Scheduling delay', 'ms', rows.map((b) => b.schedulingDelayMs), '#f58518'],
    ['Processing time', 'ms', rows.map((b) => b.processingMs), '#54a24b', o.batchIntervalMs],
    ['Total delay', 'ms', rows.map((b) => b.totalDelayMs), '#b279a2'],
  ];
  for (const [title, unit, ys, color, interval] of specs) {
    const box = h('div', { class: 'chart' }, h('h3', null, title, h('small', null, unit)));
    charts.append(box);
    chart(box, title, unit, xs, ys, color, interval);
  }

  main.append(h('h2', null, `Batches (${rows.length} newest of ${o.committed})`));
  const maxBar = Math.max(o.batchIntervalMs * 1.25, ...rows.map((b) => b.totalDelayMs));
  const barPx = (ms) => Math.max(ms > 0 ? 1 : 0, Math.round((ms / maxBar) * 160));
  const cols = [
    {
      label: 'batch time',
      value: (b) => h('a', { href: `#/batch/${b.batchTimeMs}` }, timeOfDay(b.batchTimeMs)),
    },
    { label: 'records', num: true, value: (b) => fmtCount(b.records) },
    { label: 'input rate', num: true, value: (b) => `${fmtCount(b.records / intervalS)}/s` },
    { label: 'sched delay', num: true, value: (b) => fmtMs(b.schedulingDelayMs) },
    { label: 'processing', num: true, value: (b) => fmtMs(b.processingMs) },
    { label: 'total delay', num: true, value: (b) => fmtMs(b.totalDelayMs) },
    {
      label: 'delay vs interval',
      value: (b) => [
        h('span', { class: 'bar sched', style: `width:${barPx(b.schedulingDelayMs)}px` }),
        h('span', {
          class: `bar ${b.processingMs > o.batchIntervalMs ? 'over' : ''}`,
          style: `width:${barPx(b.processingMs)}px`,
        }),
      ],
    },
    { label: 'tasks', num: true, value: (b) => String(b.tasks.total) },
    { label: 'attempts', num: true, value: (b) => String(b.tasks.attempts) },
    { label: 'retries', num: true, value: (b) => String(b.tasks.retries) },
    { label: 'spec', num: true, value: (b) => String(b.tasks.speculative) },
    { label: 'recomp', num: true, value: (b) => String(b.tasks.recomputed) },
    { label: 'dead', num: true, value: (b) => String(b.deadLetters) },
    { label: 'cost', num: true, value: (b) => fmtUsd(b.costUsd) },
    {
      label: 'flags',
      value: (b) => [
        b.capped ? tag('backpressure', 'warn') : null,
        b.recovered ? tag('recovered', 'warn') : b.catchUp ? tag('catch-up', 'info') : null,
        b.processingMs > o.batchIntervalMs ? tag('slow', 'warn') : null,
      ],
    },
  ];
  const newestFirst = [...rows].reverse().slice(0, 200);
  const t = table(cols, newestFirst, (b) => {
    location.hash = `#/batch/${b.batchTimeMs}`;
  });
  t.id = 'batches';
  main.append(h('div', { class: 'scroll' }, t));

  main.append(h('h2', null, 'Recent events'));
  main.append(eventsTable([...o.events, ...state.live].sort((a, b) => b.atMs - a.atMs).slice(0, 30)));
}

function eventsTable(events) {
  if (events.length === 0) return h('p', { class: 'muted' }, 'No backpressure, retries or failures so far.');
  return table(
    [
      { label: 'time', value: (e) => timeOfDay(e.atMs) },
      {
        label: 'batch',
        value: (e) =>
          e.batchTimeMs ? h('a', { href: `#/batch/${e.batchTimeMs}` }, timeOfDay(e.batchTimeMs)) : '-',
      },
      { label: 'event', value: (e) => tag(e.kind, e.level) },
      { label: 'what', wrap: true, value: (e) => e.text },
    ],
    events,
  );
}

function renderEvents() {
  destroyCharts();
  main.replaceChildren(h('h2', null, 'Events: backpressure, retries, speculation, recomputation, failures'));
  const derived = state.overview ? state.overview.events : [];
  main.append(
    h(
      'p',
      { class: 'muted' },
      'From the batch manifests, and live from the engine when the server runs beside the pipeline (sluice run --ui).',
    ),
    eventsTable([...derived, ...state.live].sort((a, b) => b.atMs - a.atMs)),
  );
}

// ---------- dead letters ----------

async function renderDeadLetters() {
  destroyCharts();
  const { deadLetters } = await api('/api/deadletters');
  if (state.route !== 'deadletters') return;
  state.deadCount = state.overview ? state.overview.batches.reduce((n, b) => n + b.deadLetters, 0) : -1;
  main.replaceChildren(h('h2', null, `Dead letters (${deadLetters.length} newest)`));
  main.append(deadLetterTable(deadLetters));
}

function deadLetterTable(rows) {
  if (rows.length === 0) return h('p', { class: 'muted', id: 'no-dead' }, 'No dead letters.');
  return h(
    'div',
    { class: 'scroll' },
    table(
      [
        {
          label: 'batch',
          value: (d) => h('a', { href: `#/batch/${d.batchTimeMs}` }, timeOfDay(d.batchTimeMs)),
        },
        { label: 'from', value: (d) => d.file + (d.origin ? ` · ${d.origin}` : '') },
        { label: 'reason', wrap: true, value: (d) => d.reason },
        { label: 'record', wrap: true, value: (d) => h('code', null, d.raw) },
      ],
      rows,
    ),
  );
}

// ---------- one batch ----------

async function renderBatch(t) {
  destroyCharts();
  main.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
  let d;
  try {
    d = await api(`/api/batch/${encodeURIComponent(t)}`);
  } catch (err) {
    main.replaceChildren(
      h('p', null, h('a', { href: '#/' }, '← all batches')),
      h('div', { class: 'problem' }, err.message),
    );
    return;
  }
  const m = d.manifest;
  const rel = (ms) => `+${fmtMs(ms - m.dueAtMs)}`;
  main.replaceChildren(
    h('p', null, h('a', { href: '#/' }, '← all batches')),
    h(
      'h2',
      { id: 'batch-title' },
      `Batch ${timeOfDay(m.batchTimeMs)} `,
      h('span', { class: 'muted mono' }, String(m.batchTimeMs)),
      m.recovered
        ? tag('re-run after a restart', 'warn')
        : m.catchUp
          ? tag('catch-up (driver was behind the clock)', 'info')
          : null,
      m.input.capped ? tag('capped by backpressure', 'warn') : null,
    ),
    facts([
      ['records', fmtCount(m.input.records)],
      ['dead letters', fmtCount(m.input.deadLetters + (m.deadLettered || 0))],
      ['scheduling delay', fmtMs(m.schedulingDelayMs)],
      ['processing', fmtMs(m.processingMs)],
      ['total delay', fmtMs(m.totalDelayMs)],
      [
        'due · started · finished',
        `${timeOfDay(m.dueAtMs)} · ${rel(m.startedAtMs)} · ${rel(m.finishedAtMs)}`,
      ],
      ['tasks · attempts', `${m.tasks.total} · ${m.tasks.attempts}`],
      [
        'retries · speculative · recomputed',
        `${m.tasks.retries} · ${m.tasks.speculative} · ${m.tasks.recomputed}`,
      ],
    ]),
    h('h2', null, 'Phases'),
    facts(Object.entries(m.phases).map(([k, v]) => [k, fmtMs(v)])),
    h('h2', null, 'Stages and tasks'),
  );
  const longest = Math.max(1, ...m.stages.flatMap((st) => st.taskDurationsMs));
  main.append(
    table(
      [
        { label: 'stage', num: true, value: (st) => String(st.id) },
        { label: 'kind', value: (st) => st.kind },
        { label: 'target', value: (st) => st.target },
        { label: 'tasks', num: true, value: (st) => String(st.tasks) },
        { label: 'attempts', num: true, value: (st) => String(st.attempts) },
        { label: 'retries', num: true, value: (st) => String(st.retries) },
        { label: 'speculative', num: true, value: (st) => String(st.speculative ?? 0) },
        { label: 'records', num: true, value: (st) => fmtCount(st.records) },
        { label: 'bytes', num: true, value: (st) => fmtBytes(st.bytes) },
        { label: 'duration', num: true, value: (st) => fmtMs(st.durationMs) },
        {
          label: 'task min / p50 / max',
          num: true,
          value: (st) => {
            const ds = st.taskDurationsMs;
            return ds.length ? `${Math.min(...ds)} / ${percentile(ds, 0.5)} / ${Math.max(...ds)} ms` : '-';
          },
        },
        {
          label: 'task times',
          value: (st) =>
            st.taskDurationsMs.map((ms) =>
              h('span', {
                class: 'bar',
                title: `${ms} ms`,
                style: `width:3px;margin-right:1px;height:${Math.max(2, Math.round((ms / longest) * 18))}px`,
              }),
            ),
        },
        { label: 'operators', wrap: true, value: (st) => st.operators.join(' › ') },
      ],
      m.stages,
    ),
  );
  main.append(
    h('h2', null, 'Requests and cost'),
    facts([
      ['get', fmtCount(m.requests.get)],
      ['put', fmtCount(m.requests.put)],
      ['list', fmtCount(m.requests.list)],
      ['delete', fmtCount(m.requests.delete)],
      ['read', fmtBytes(m.requests.bytesRead)],
      ['written', fmtBytes(m.requests.bytesWritten)],
      [
        'cost on AWS (S3 + Lambda)',
        `${fmtUsd(d.cost.totalUsd)} (${fmtUsd(d.cost.s3Usd)} + ${fmtUsd(d.cost.lambdaUsd)})`,
      ],
    ]),
    h('p', { class: 'muted' }, 'us-east-1 list prices, 1 GB Lambdas, task times as measured here.'),
    h('h2', null, 'Outputs'),
    table(
      [
        { label: 'output', value: (o) => o.name },
        { label: 'kind', value: (o) => o.kind },
        { label: 'partitions', num: true, value: (o) => String(o.partitions) },
        { label: 'records', num: true, value: (o) => fmtCount(o.records) },
        { label: 'why', value: (o) => o.reason },
      ],
      m.outputs,
    ),
    h('h2', null, 'Stored partitions: open one to see its lineage'),
  );
  if (d.stored.length === 0) {
    main.append(
      h(
        'p',
        { class: 'muted' },
        'Nothing of this batch is stored any more (RDD partitions are kept only while later batches may read them).',
      ),
    );
  } else {
    main.append(
      table(
        [
          { label: 'area', value: (x) => x.area },
          { label: 'name', value: (x) => x.name },
          {
            label: 'partitions (lineage)',
            wrap: true,
            value: (x) =>
              h(
                'span',
                { class: 'parts' },
                x.partitions.map((p) =>
                  h(
                    'a',
                    {
                      href: `#/lineage/${encodeURIComponent(x.name)}/${m.batchTimeMs}/${p}`,
                      class: 'lineage-link',
                      'data-area': x.area,
                    },
                    String(p),
                  ),
                ),
              ),
          },
        ],
        d.stored,
      ),
    );
  }
  main.append(h('h2', null, 'Events'), eventsTable(d.events));
  main.append(h('h2', null, 'Dead letters'), deadLetterTable(d.deadLetters));
}

// ---------- lineage graph ----------

const KIND_FILL = {
  partition: '#dbeafe',
  input: '#dcfce7',
  dataset: '#fef9c3',
  missing: '#f3f4f6',
  repeat: '#ffffff',
  truncated: '#f3f4f6',
};

/** Layers as columns (input blocks left, the partition asked for right); order within a layer by
 *  the mean position of the nodes it feeds (a barycenter pass), so edges cross less. */
function layout(graph) {
  const W = 210;
  const H = 58;
  const GX = 56;
  const GY = 16;
  const maxLayer = Math.max(0, ...graph.nodes.map((n) => n.layer));
  const layers = Array.from({ length: maxLayer + 1 }, () => []);
  for (const n of graph.nodes) layers[n.layer].push(n);
  const children = new Map();
  for (const [parent, child] of graph.edges) {
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(child);
  }
  const pos = new Map();
  for (let l = 0; l <= maxLayer; l++) {
    const nodes = layers[l];
    const score = (n) => {
      const ys = (children.get(n.id) || []).map((c) => pos.get(c)?.order).filter((v) => v !== undefined);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
    };
    nodes.sort((a, b) => score(a) - score(b) || a.rddId.localeCompare(b.rddId) || a.partition - b.partition);
    nodes.forEach((n, i) => {
      pos.set(n.id, { order: i, x: 20 + (maxLayer - l) * (W + GX), y: 20 + i * (H + GY) });
    });
  }
  const tallest = Math.max(...layers.map((ns) => ns.length));
  return { pos, W, H, width: 40 + (maxLayer + 1) * (W + GX) - GX, height: 40 + tallest * (H + GY) - GY };
}

function nodeLines(n) {
  const at = n.batchTimeMs > 0 ? ` @${timeOfDay(n.batchTimeMs)}` : '';
  const title = `${n.rddId}[${n.partition}]${at}`;
  switch (n.kind) {
    case 'partition':
      return [
        title,
        (n.operators || []).join(' › ') || n.operator,
        `${fmtCount(n.records)} rec · ${fmtBytes(n.bytes)} · try ${n.attempt} · ${fmtMs(n.durationMs)}`,
      ];
    case 'input':
      return [title, 'input block', n.key];
    case 'dataset':
      return [title, 'stored dataset', n.key];
    case 'missing':
      return [title, 'cleaned up (not retained)', n.key];
    default:
      return [title, n.kind, ''];
  }
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

async function renderLineage(rdd, t, p, depth) {
  destroyCharts();
  main.replaceChildren(h('p', { class: 'muted' }, 'loading lineage…'));
  let graph;
  try {
    graph = await api(
      `/api/lineage?rdd=${encodeURIComponent(rdd)}&t=${encodeURIComponent(t)}&p=${encodeURIComponent(p)}&depth=${depth}`,
    );
  } catch (err) {
    main.replaceChildren(
      h('p', null, h('a', { href: `#/batch/${t}` }, '← batch')),
      h('div', { class: 'problem', id: 'lineage-error' }, err.message),
    );
    return;
  }
  const { pos, W, H, width, height } = layout(graph);
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'lineage-graph' });
  svg.append(
    s(
      'defs',
      null,
      s(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: 'auto',
        },
        s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8c959f' }),
      ),
    ),
  );
  for (const [parent, child] of graph.edges) {
    const a = pos.get(parent);
    const b = pos.get(child);
    if (!a || !b) continue;
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const x2 = b.x;
    const y2 = b.y + H / 2;
    const mx = (x1 + x2) / 2;
    svg.append(
      s('path', {
        class: 'edge',
        d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
        'marker-end': 'url(#arrow)',
      }),
    );
  }
  const panel = h(
    'div',
    { class: 'record', id: 'record' },
    h('p', { class: 'muted' }, 'Click a partition to open its lineage record.'),
  );
  for (const n of graph.nodes) {
    const at = pos.get(n.id);
    const [title, l2, l3] = nodeLines(n);
    const g = s(
      'g',
      { class: 'node', transform: `translate(${at.x},${at.y})`, 'data-id': n.id, 'data-kind': n.kind },
      s('title', null, `${title}\n${n.key}`),
      s('rect', {
        width: W,
        height: H,
        rx: n.kind === 'input' || n.kind === 'dataset' ? 14 : 4,
        fill: KIND_FILL[n.kind] || '#fff',
        'stroke-dasharray': n.kind === 'missing' || n.kind === 'truncated' ? '4,3' : '',
      }),
      s('text', { x: 8, y: 17, class: 'title' }, clip(title, 31)),
      s('text', { x: 8, y: 33 }, clip(l2 || '', 33)),
      s('text', { x: 8, y: 49, class: 'muted' }, clip(l3 || '', 35)),
    );
    g.addEventListener('click', () => openRecord(n, g, panel));
    svg.append(g);
  }
  const root = graph.nodes.find((n) => n.id === graph.root);
  main.replaceChildren(
    h('p', null, h('a', { href: `#/batch/${t}` }, `← batch ${timeOfDay(Number(t))}`)),
    h('h2', null, `Lineage of ${rdd}[${p}] `, h('span', { class: 'muted mono' }, root ? root.key : '')),
    h(
      'p',
      { class: 'muted' },
      'levels of parents shown: ',
      [3, 6, 12, 24].map((d) =>
        d === depth
          ? h('b', { style: 'margin-right:8px' }, String(d))
          : h(
              'a',
              { href: `#/lineage/${encodeURIComponent(rdd)}/${t}/${p}/${d}`, style: 'margin-right:8px' },
              String(d),
            ),
      ),
    ),
    h(
      'p',
      { class: 'legend muted' },
      h('span', null, h('i', { style: `background:${KIND_FILL.partition}` }), 'stored partition'),
      h(
        'span',
        null,
        h('i', { style: `background:${KIND_FILL.input};border-radius:6px` }),
        'input block (leaf)',
      ),
      h('span', null, h('i', { style: `background:${KIND_FILL.dataset}` }), 'stored dataset'),
      h('span', null, h('i', { style: `background:${KIND_FILL.missing};border-style:dashed` }), 'cleaned up'),
      h(
        'span',
        null,
        `${graph.nodes.length} partitions, ${graph.edges.length} edges; data flows left to right`,
      ),
    ),
    h('div', { class: 'lineage' }, h('div', { class: 'graph' }, svg), panel),
  );
}

async function openRecord(n, g, panel) {
  for (const el of document.querySelectorAll('.node.selected')) el.classList.remove('selected');
  g.classList.add('selected');
  panel.replaceChildren(h('h3', null, n.id), h('p', { class: 'mono muted' }, n.key));
  if (n.kind !== 'partition') {
    panel.append(
      h(
        'p',
        null,
        n.kind === 'input'
          ? 'An input block: the source of truth, written before the batch ran (the write-ahead entry names it).'
          : n.kind === 'missing'
            ? 'Cleaned up once no later batch could read it; lineage would recompute it from its parents.'
            : 'No lineage record (a leaf of the graph).',
      ),
    );
    return;
  }
  try {
    const record = await api(`/api/record?key=${encodeURIComponent(n.key)}`);
    panel.append(h('pre', { id: 'record-json' }, JSON.stringify(record, null, 2)));
  } catch (err) {
    panel.append(h('div', { class: 'problem' }, err.message));
  }
}

// ---------- routing ----------

function route() {
  const hash = location.hash || '#/';
  const parts = hash.slice(2).split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.remove('active');
  const nav = (name) => document.querySelector(`[data-nav="${name}"]`)?.classList.add('active');
  if (parts[0] === 'batch' && parts[1]) {
    state.route = 'batch';
    renderBatch(parts[1]);
  } else if (parts[0] === 'lineage' && parts.length >= 4) {
    state.route = 'lineage';
    const depth = Number(parts[4]);
    renderLineage(parts[1], parts[2], parts[3], Number.isInteger(depth) && depth > 0 ? depth : 6);
  } else if (parts[0] === 'deadletters') {
    state.route = 'deadletters';
    nav('deadletters');
    renderDeadLetters().catch((err) => main.replaceChildren(h('div', { class: 'problem' }, err.message)));
  } else if (parts[0] === 'events') {
    state.route = 'events';
    nav('events');
    renderEvents();
  } else {
    state.route = 'overview';
    nav('overview');
    renderOverview();
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('resize', () => {
  if (state.route === 'overview') renderOverview();
});
route();
connect();
