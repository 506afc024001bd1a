// The capacity dashboard: bytes per tier (read from MinIO), growth, when each
// tier fills, bytes per session-hour, recording coverage and review rate.
// The tiers are whatever the server is configured with (GUI_RECORDER_TIERS), in
// the order /api/ops/storage lists them: nothing here names a tier.

import { api } from './api.js';
import { $, bytes, el, enterPage, when } from './common.js';
import { describeApiError } from './status.js';

const SVG = 'http://www.w3.org/2000/svg';
// A colour per tier by position: the first (where recordings are written) red, then blue, ...
const PALETTE = ['#d1242f', '#0969da', '#8250df', '#1a7f37', '#bc4c00', '#57606a', '#bf3989', '#0550ae'];
const colorOf = (index) => PALETTE[index % PALETTE.length];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function pct(share) {
  return share == null ? '—' : `${(share * 100).toFixed(1)}%`;
}

// The card of one tier, made once (ids `${name}-bytes` and `${name}-detail`), before the coverage card.
function ensureTierCard(name) {
  if ($(`${name}-bytes`)) return;
  const card = document.createElement('div');
  card.className = 'card tier-card';
  card.dataset.tier = name;
  const title = document.createElement('h2');
  title.textContent = `${name.charAt(0).toUpperCase()}${name.slice(1)} tier`;
  const figure = document.createElement('p');
  figure.className = 'figure';
  figure.id = `${name}-bytes`;
  figure.textContent = '—';
  const detail = document.createElement('p');
  detail.className = 'muted';
  detail.id = `${name}-detail`;
  card.append(title, figure, detail);
  $('cards').insertBefore(card, $('coverage-card'));
}

function tierCard(name, tier) {
  ensureTierCard(name);
  const figure = $(`${name}-bytes`);
  figure.textContent = bytes(tier.bytes);
  figure.dataset.bytes = String(tier.bytes); // exact, for tools and tests
  const growth = tier.growth_bytes_per_day == null ? 'no growth measured yet' : `growth ${bytes(tier.growth_bytes_per_day)}/day`;
  let full = 'capacity not configured';
  if (tier.capacity_bytes) {
    full = tier.full_in_days == null ? `of ${bytes(tier.capacity_bytes)}; not filling`
      : `of ${bytes(tier.capacity_bytes)}; full in ${Math.round(tier.full_in_days)} days`;
  }
  $(`${name}-detail`).textContent = `${tier.objects} objects · ${growth} · ${full}`;
}

function historyChart(report) {
  const chart = $('history-chart');
  chart.replaceChildren();
  const W = chart.clientWidth || 600;
  const H = 220;
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const names = Object.keys(report.tiers);
  const points = [...report.history.filter((p) => names.includes(p.tier)),
    ...names.map((t) => ({ at: report.at, tier: t, bytes: report.tiers[t].bytes }))];
  const times = points.map((p) => new Date(p.at).getTime());
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const maxBytes = Math.max(1, ...points.map((p) => p.bytes));
  const x = (t) => 50 + ((t - t0) / (t1 - t0)) * (W - 70);
  const y = (b) => H - 25 - (b / maxBytes) * (H - 45);
  chart.append(svg('text', { x: 4, y: 14, 'font-size': 11 }, bytes(maxBytes)), svg('text', { x: 4, y: H - 25, 'font-size': 11 }, '0'));
  const when = (t) => new Date(t).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
  chart.append(svg('text', { x: 50, y: H - 6, 'font-size': 11 }, when(t0)),
    svg('text', { x: W - 20, y: H - 6, 'font-size': 11, 'text-anchor': 'end' }, when(t1)));
  names.forEach((tier, index) => {
    const color = colorOf(index);
    const series = points.filter((p) => p.tier === tier).sort((a, b) => new Date(a.at) - new Date(b.at));
    const d = series.map((p, i) => `${i ? 'L' : 'M'}${x(new Date(p.at).getTime()).toFixed(1)},${y(p.bytes).toFixed(1)}`).join(' ');
    chart.append(svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, 'data-tier': tier }));
    for (const p of series) chart.append(svg('circle', { cx: x(new Date(p.at).getTime()), cy: y(p.bytes), r: 3, fill: color }));
    chart.append(svg('text', { x: W - 60, y: 16 + index * 14, fill: color, 'font-size': 12 }, tier));
  });
}

function rateChart(report) {
  const chart = $('rate-chart');
  chart.replaceChildren();
  const W = chart.clientWidth || 600;
  const rows = [
    ...Object.entries(report.bytes_per_session_hour.by_protocol).map(([k, v]) => [`protocol ${k}`, v]),
    ...Object.entries(report.bytes_per_session_hour.by_connection).map(([k, v]) => [`connection ${k}`, v]),
  ];
  const H = Math.max(60, rows.length * 24 + 10);
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  chart.style.height = `${H}px`;
  const max = Math.max(1, ...rows.map((r) => r[1]));
  rows.forEach(([label, value], i) => {
    const y = 8 + i * 24;
    chart.append(svg('text', { x: 4, y: y + 13, 'font-size': 12 }, label));
    chart.append(svg('rect', { x: 190, y, width: Math.max(1, ((W - 300) * value) / max), height: 16, fill: '#57606a' }));
    chart.append(svg('text', { x: 196 + ((W - 300) * value) / max, y: y + 13, 'font-size': 12 }, `${bytes(value)}/h`));
  });
}

// Audit sinks (issue 18): one row per configured sink; its figures are this gateway process's.
function sinksTable(report) {
  const body = $('sinks-body');
  const epoch = (s) => (s ? when(new Date(s * 1000).toISOString()) : 'never');
  const rows = report.sinks.map((s) => el('tr', { dataset: { sink: s.name, up: String(s.up) } },
    el('td', {}, s.name), el('td', {}, s.kind),
    el('td', { className: s.up ? 'ok' : 'bad' }, s.up ? 'up' : 'down (spooling)'),
    el('td', {}, String(s.queued)), el('td', {}, `${s.spooled} (${bytes(s.spooled_bytes)})`),
    el('td', {}, String(s.delivered)), el('td', {}, String(s.dropped)), el('td', {}, String(s.resent)),
    el('td', {}, epoch(s.last_success)),
    el('td', {}, s.last_error ? `${s.last_error} (${epoch(s.last_error_at)})` : '')));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 10, className: 'muted' }, 'no audit sinks configured')));
  body.replaceChildren(...rows);
  $('audit-chain').textContent = `Audit chain head: event ${report.chain.seq}` +
    (report.chain.hash ? `, hash ${report.chain.hash.slice(0, 16)}…` : '') +
    ' (gui-recorder verify-audit checks every link).';
}

// The guardrails' KPIs (issue 14): high-risk alerts, blocked commands, sessions of unusual length.
async function guardrails() {
  const kpis = await api('GET', '/api/ops/guardrails');
  $('high-risk').textContent = String(kpis.high_risk_alerts);
  $('high-risk-open').textContent = `${kpis.high_risk_open} not acknowledged · last 30 days`;
  $('blocked').textContent = String(kpis.blocked_commands);
  $('anomalies').replaceChildren(...(kpis.duration_anomalies.length ? kpis.duration_anomalies.map((a) => {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = `player.html?session=${encodeURIComponent(a.session_id)}`;
    link.textContent = a.session_id.slice(0, 8);
    li.append(link, ` ${a.reason}`);
    return li;
  }) : [Object.assign(document.createElement('li'), { textContent: 'None.' })]));
  $('anomaly-method').textContent = kpis.method;
}

async function refresh() {
  try {
    sinksTable(await api('GET', '/api/ops/audit-sinks'));
  } catch (err) {
    $('sinks-body').replaceChildren(el('tr', {}, el('td', { colSpan: 10 }, describeApiError(err))));
  }
  try {
    const report = await api('GET', '/api/ops/storage');
    $('page-error').hidden = true;
    for (const [name, tier] of Object.entries(report.tiers)) tierCard(name, tier);
    $('coverage').textContent = pct(report.coverage.share);
    $('review-rate').textContent = pct(report.review_rate.share);
    $('method').textContent = report.method;
    historyChart(report);
    rateChart(report);
    await guardrails();
    document.body.dataset.ready = 'true';
  } catch (err) {
    $('page-error').textContent = describeApiError(err);
    $('page-error').hidden = false;
  }
}

// The capacity planner (/api/ops/capacity-plan): the measured rates and the retention, applied to a load.
async function planCapacity(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({
    concurrent: $('plan-concurrent').value, hours_per_day: $('plan-hours').value, days: $('plan-days').value,
  });
  try {
    const plan = await api('GET', `/api/ops/capacity-plan?${params}`);
    $('plan-rows').replaceChildren(...plan.tiers.map((t) => el('tr', { dataset: { tier: t.tier } },
      el('td', {}, t.tier + (t.media_kept ? '' : ' (recordings only)')),
      el('td', {}, String(t.holds_days)),
      el('td', { className: 'plan-needed' }, bytes(t.needed_bytes)),
      el('td', {}, t.capacity_bytes ? bytes(t.capacity_bytes) : 'not set'),
      el('td', {}, t.fills_at_current_growth || 'never at this rate'),
      el('td', {}, t.fills_under_plan || (t.capacity_bytes ? 'does not fill' : '—')))));
    const inputs = plan.inputs;
    $('plan-inputs').textContent = `Inputs: ${bytes(inputs.recording_bytes_per_session_hour)} of recording and `
      + `${bytes(inputs.media_bytes_per_session_hour)} of media per session-hour, measured over `
      + `${inputs.measured_session_hours.toFixed(1)} session-hours; ${plan.plan.session_hours_per_day} `
      + `session-hours a day; retention ${inputs.retention_days} days; media `
      + `${inputs.drop_media_after_first_tier ? 'dropped after the first tier' : 'kept in every tier'}.`;
    $('plan-method').textContent = plan.method;
    $('plan-table').hidden = false;
    document.body.dataset.planned = 'true';
  } catch (err) {
    $('page-error').textContent = describeApiError(err);
    $('page-error').hidden = false;
  }
}

async function main() {
  const user = await enterPage('ops.read');
  if (!user) return;
  document.body.dataset.view = 'ops';
  $('plan-form').addEventListener('submit', planCapacity);
  await refresh();
  await planCapacity();
  setInterval(refresh, 30000);
}

main();
