// ecs-reconciler dashboard: vanilla JS, no build step, same-origin requests only.
//
// What each part owns:
//   connection  EventSource on /api/v1/events ("status" and "timeline" events,
//               automatic reconnection, the connection badge); polls
//               /api/v1/status every 5 s when SSE is unavailable or refused.
//   onStatus    keeps the latest status, the API-call samples (for rates) and
//               the last drift seen per unit, then calls every render*.
//   render*     one function per page region: header (overall state, leader),
//               config (+ the validation error), addresses, API rates,
//               reconciler, resource cards (desired vs live), timeline.
//   helpers     el() builds DOM from text nodes only (no markup parsing); times are
//               <time data-unix> elements refreshed every second.
'use strict';
(() => {
  const POLL_MS = 5000, SSE_RETRY_MS = 30000, TIMELINE_MAX = 100;
  const KINDS = ['security-group', 'cluster', 'service', 'target-group', 'load-balancer'];
  const STATE = {
    'in-sync': ['✓', 'In sync'], drifted: ['!', 'Drifted'], correcting: ['↻', 'Correcting'],
    error: ['✕', 'Error'], unknown: ['?', 'Unknown'],
  };
  const RESULT = { applied: 'applied', 'already-done': 'already done', skipped: 'skipped', failed: 'failed' };
  const DISPOSITION = { apply: 'corrected', observe: 'left alone (observe-only)', report: 'reported only', info: 'info' };
  const S = { status: null, cards: new Map(), memo: new Map(), api: [], events: [], seen: new Set(), mode: 'connecting' };
  const $ = (id) => document.getElementById(id);

  // ---- helpers -------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') n.className = v; else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat(Infinity)) if (k != null && k !== false) n.append(k instanceof Node ? k : String(k));
    return n;
  }
  const fill = (node, ...kids) => { node.replaceChildren(); node.append(...kids.flat(Infinity).filter((k) => k != null && k !== false)); };
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (unix) => { const d = new Date(unix * 1000); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
  function ago(unix) {
    const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
    return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s ago` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  }
  const when = (unix) => (unix == null ? el('span', { class: 'muted' }, 'never')
    : el('time', { datetime: new Date(unix * 1000).toISOString(), 'data-unix': unix, title: new Date(unix * 1000).toLocaleString() }, ago(unix)));
  const tick = () => { for (const t of document.querySelectorAll('time[data-unix]')) t.textContent = ago(Number(t.dataset.unix)); };
  const dl = (rows) => rows.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]);
  const list = (items, cls) => (items && items.length ? el('ul', { class: `plain ${cls || ''}` }, items.map((i) => el('li', {}, i))) : el('span', { class: 'muted' }, 'none'));
  const splitUnit = (unit) => { const i = unit.indexOf('/'); return [unit.slice(0, i), unit.slice(i + 1)]; };
  const announce = (text) => { $('announce').textContent = text; };
  const stateOf = (u) => (STATE[u.state] ? u.state : 'unknown');

  // ---- connection ----------------------------------------------------------
  let source = null, pollTimer = null;
  function setConn(mode) {
    S.mode = mode;
    const text = { live: 'live', polling: 'polling every 5 s', disconnected: 'disconnected, retrying…', connecting: 'connecting…' }[mode];
    const badge = $('conn');
    badge.dataset.conn = mode;
    badge.textContent = text;
    $('timeline-note').textContent = mode === 'polling' ? '(reconstructed from status polls)' : '';
  }
  function connect() {
    if (!('EventSource' in window)) return startPolling();
    source = new EventSource('/api/v1/events');
    source.addEventListener('open', () => { stopPolling(); setConn('live'); });
    source.addEventListener('status', (e) => { const s = parse(e.data); if (s) onStatus(s, false); });
    source.addEventListener('timeline', (e) => { const ev = parse(e.data); if (ev) addEvents([ev]); });
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) return setConn('disconnected'); // the browser retries
      source.close(); // refused (no such endpoint, wrong type): poll, try SSE again later
      source = null;
      startPolling();
      setTimeout(connect, SSE_RETRY_MS);
    });
  }
  function parse(text) { try { return JSON.parse(text); } catch { return null; } }
  async function poll() {
    try {
      const r = await fetch('/api/v1/status', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const s = await r.json();
      if (pollTimer) { setConn('polling'); onStatus(s, true); }
    } catch { if (pollTimer) setConn('disconnected'); }
  }
  function startPolling() { if (!pollTimer) { pollTimer = setInterval(poll, POLL_MS); poll(); } }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }

  // ---- status --------------------------------------------------------------
  function onStatus(s, polled) {
    const prev = S.status;
    S.status = s;
    if (polled && prev) addEvents(diffEvents(prev, s));
    if (s.api) pushApi(s.api);
    for (const [name, u] of Object.entries(s.daemon?.units || {})) {
      if ((u.drift && u.drift.length) || (u.actions && u.actions.length)) S.memo.set(name, { at: u.last_pass_unix, drift: u.drift || [], actions: u.actions || [] });
    }
    renderHeader(s); renderConfig(s.config); renderAddresses(s); renderApi(); renderDaemon(s); renderUnits(s);
  }
  // Without the server's timeline (polling), events are inferred from two snapshots.
  function diffEvents(a, b) {
    const out = [], now = Date.now() / 1000, au = a.daemon?.units || {};
    for (const [name, u] of Object.entries(b.daemon?.units || {})) {
      if (au[name] && au[name].state !== u.state) out.push({ time: now, kind: u.state === 'error' ? 'error' : 'drift', unit: name, message: `${label(au[name])} → ${label(u)}` });
      if (u.last_pass_unix !== au[name]?.last_pass_unix) for (const x of u.actions || []) out.push({ time: now, kind: 'action', unit: name, message: `${x.change?.kind}: ${RESULT[x.result] || x.result}` });
    }
    const ae = a.config?.error, be = b.config?.error;
    if (ae !== be) out.push({ time: now, kind: 'config', unit: null, message: be ? `config rejected: ${be.split('\n')[0]}` : `config reloaded (generation ${b.config?.generation})` });
    if (a.leadership?.role !== b.leadership?.role) out.push({ time: now, kind: 'leadership', unit: null, message: `now ${b.leadership?.role}` });
    return out;
  }
  function pushApi(api) {
    const now = Date.now() / 1000, last = S.api[S.api.length - 1];
    if (last && Object.keys(api).some((k) => (api[k]?.calls || 0) < (last.api[k]?.calls || 0))) S.api = []; // daemon restarted
    S.api.push({ t: now, api });
    while (S.api.length > 2 && now - S.api[1].t >= 60) S.api.shift(); // keep one sample at least 60 s old as the base
  }
  // Counts only change with a new snapshot, so the rate runs up to now.
  function perMinute(svc, field) {
    const base = S.api[0], last = S.api[S.api.length - 1], dt = Date.now() / 1000 - base.t;
    if (S.api.length < 2 || dt < 2) return null;
    return (((last.api[svc]?.[field] || 0) - (base.api[svc]?.[field] || 0)) / dt) * 60;
  }

  // ---- render: header, config, addresses, API, reconciler -----------------
  function label(u) { return u.mode === 'observe' && u.state === 'drifted' ? 'Drifted (observe-only)' : (STATE[u.state] || STATE.unknown)[1]; }
  function renderHeader(s) {
    $('version').textContent = s.version ? `v${s.version}` : '';
    const units = Object.values(s.daemon?.units || {}), n = (st) => units.filter((u) => u.state === st).length;
    const errors = n('error'), drifted = n('drifted'), correcting = n('correcting');
    let state = 'in-sync', text = `All ${units.length} resources in sync`;
    if (!units.length) [state, text] = ['unknown', s.daemon?.passes ? 'No resources reported' : 'Waiting for the first pass…'];
    else if (errors) [state, text] = ['error', [`${errors} in error`, drifted && `${drifted} drifted`, correcting && `${correcting} correcting`].filter(Boolean).join(', ')];
    else if (drifted) [state, text] = ['drifted', `${drifted} drifted` + (correcting ? `, ${correcting} correcting` : '')];
    else if (correcting) [state, text] = ['correcting', `${correcting} correcting`];
    if (s.config?.error) text += ' · config rejected';
    const o = $('overall');
    if (o.dataset.state !== state || o.lastElementChild.textContent !== text) {
      o.dataset.state = state;
      fill(o, el('span', { class: 'icon', 'aria-hidden': 'true' }, STATE[state][0]), ' ', el('span', { class: 'text' }, text));
    }
    const l = s.leadership || {}, b = $('leader');
    b.dataset.role = l.role || 'unknown';
    b.textContent = l.role === 'leader' ? 'leader' : l.role === 'follower' ? `follower${l.leader ? ` (leader: ${l.leader})` : ''}` : 'leadership unknown';
    b.title = l.reason || 'Only the leader writes; followers observe and report.';
  }
  function renderConfig(c) {
    if (!c) return;
    fill($('config'), dl([
      ['File', el('code', {}, c.path)], ['Generation', String(c.generation)], ['Loaded', when(c.loaded_at_unix)],
      ['Last check', [when(c.last_attempt_at_unix), ' ', c.last_reload_ok ? el('span', { class: 'ok' }, '✓ ok') : el('span', { class: 'bad' }, '✕ rejected')]],
      c.hash && ['Hash', el('code', { title: c.hash }, c.hash.slice(0, 12))],
    ]));
    const box = $('config-error'), pre = $('config-error-text');
    box.hidden = !c.error;
    if (c.error && pre.dataset.text !== c.error) {
      pre.dataset.text = c.error;
      // `FILE:LINE:COL: error: ...` lines: the position in bold.
      fill(pre, c.error.split('\n').map((line, i) => {
        const m = /^(.*?:\d+:\d+)(:.*)$/.exec(line);
        return [i ? '\n' : '', m ? [el('strong', { class: 'pos' }, m[1]), m[2]] : line];
      }));
    }
  }
  function renderAddresses(s) {
    const addrs = s.addresses || s.daemon?.addresses || [];
    fill($('addresses'), addrs.length ? addrs.map((a) => el('li', {},
      /^[A-Za-z0-9.-]+$/.test(a.dnsName) ? el('a', { href: `http://${a.dnsName}/`, rel: 'noreferrer', class: 'dns' }, a.dnsName) : el('code', {}, a.dnsName),
      el('span', { class: 'muted' }, ` ${a.loadBalancer}`))) : el('li', { class: 'muted' }, 'not known yet'));
  }
  function renderApi() {
    const api = S.status?.api;
    $('api-panel').hidden = !api;
    if (!api) return;
    const fmt = (v) => (v == null ? '…' : v.toFixed(v < 10 ? 1 : 0));
    fill($('api'), Object.keys(api).sort().map((svc) => {
      const c = api[svc] || {}, th = perMinute(svc, 'throttled');
      return el('tr', { 'data-service': svc, class: th > 0 ? 'hot' : null }, el('th', { scope: 'row' }, svc), el('td', {}, fmt(perMinute(svc, 'calls'))),
        el('td', {}, String(c.errors ?? 0)), el('td', {}, String(c.throttled ?? 0), th > 0 ? ` (${fmt(th)}/min)` : ''));
    }));
  }
  function renderDaemon(s) {
    const d = s.daemon || {};
    fill($('daemon'), dl([
      ['Passes', String(d.passes ?? 0)], ['Last pass', [when(d.last_pass_unix), d.last_pass_seconds != null ? ` (${(d.last_pass_seconds * 1000).toFixed(0)} ms)` : '']],
      ['Full observation', when(d.last_complete_observation_unix)],
    ]));
    const u = $('unknowns');
    u.hidden = !(d.unknowns && d.unknowns.length);
    fill(u, (d.unknowns || []).map((x) => el('li', {}, el('strong', {}, `? ${x.what}`), `: ${x.why}`)));
  }

  // ---- render: resource cards ----------------------------------------------
  function renderUnits(s) {
    const units = s.daemon?.units || {}, box = $('units'), sched = new Map((s.daemon?.schedule || []).map((x) => [x.unit, x]));
    const names = Object.keys(units).sort((a, b) => (KINDS.indexOf(splitUnit(a)[0]) - KINDS.indexOf(splitUnit(b)[0])) || a.localeCompare(b));
    if (!names.length) return fill(box, el('p', { class: 'muted' }, s.daemon?.passes ? 'No resources.' : 'Waiting for the first pass…'));
    box.querySelector(':scope > p')?.remove();
    for (const [name, c] of S.cards) if (!(name in units)) { c.node.remove(); S.cards.delete(name); }
    names.forEach((name, i) => {
      const u = units[name], failures = sched.get(name)?.consecutive_failures || 0;
      const sig = JSON.stringify([u, failures, S.memo.get(name)?.at]);
      let c = S.cards.get(name);
      if (!c || c.sig !== sig) {
        const node = card(name, u, failures);
        if (c) { c.node.replaceWith(node); if (c.state !== u.state) announce(`${name}: ${label(u)}`); }
        c = { node, sig, state: u.state };
        S.cards.set(name, c);
      }
      if (box.children[i] !== c.node) box.insertBefore(c.node, box.children[i] || null);
    });
  }
  function card(name, u, failures) {
    const [kindFromName, nameRest] = splitUnit(name), kind = u.kind || kindFromName, st = stateOf(u), id = `u-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const memo = S.memo.get(name);
    return el('article', { class: 'unit', 'data-unit': name, 'data-state': st, 'data-mode': u.mode || null, 'aria-labelledby': id },
      el('header', {},
        el('span', { class: 'kind' }, kind.replace(/-/g, ' ')),
        el('h3', { id }, u.name || nameRest),
        u.mode && el('span', { class: `badge mode-${u.mode}` }, u.mode === 'observe' ? 'observe-only' : u.mode),
        el('span', { class: 'state', 'data-state': st }, el('span', { 'aria-hidden': 'true' }, STATE[st][0]), ' ', el('span', { class: 'state-text' }, label(u)))),
      desiredLive(kind, u.desired, u.live),
      u.last_error && el('p', { class: 'error' }, el('strong', {}, 'Error: '), u.last_error, failures ? ` (${failures} failures in a row)` : ''),
      u.drift && u.drift.length ? changes('Drift now', u.last_pass_unix, u.drift, u.actions) : memo && changes('Last drift', memo.at, memo.drift, memo.actions),
      el('p', { class: 'checked muted' }, 'Checked ', when(u.last_pass_unix), u.last_success_unix !== u.last_pass_unix ? [' · last success ', when(u.last_success_unix)] : ''));
  }
  function changes(title, at, drift, actions) {
    const done = (c) => (actions || []).find((a) => a.change && a.change.kind === c.kind && a.change.resource === c.resource && a.change.before === c.before);
    const items = drift.map((c) => {
      const a = done(c);
      return el('li', {}, el('span', { class: 'ckind' }, c.kind), ' ', el('code', {}, c.before), ' → ', el('code', {}, c.after),
        el('div', { class: 'reason muted' }, c.reason), el('div', { class: 'did' }, 'Done: ', a ? outcome(a) : DISPOSITION[c.disposition] || c.disposition));
    });
    for (const a of actions || []) if (!drift.some((c) => done(c) === a)) items.push(el('li', {}, el('span', { class: 'ckind' }, a.change?.kind), ' ', outcome(a)));
    return el('div', { class: 'changes' }, el('h4', {}, `${title} `, when(at)), el('ul', { class: 'plain' }, items));
  }
  function outcome(a) {
    const detail = a.requestId || a.request_id ? ` (request ${a.requestId || a.request_id})` : a.reason ? `: ${a.reason}` : a.error ? `: ${a.error}` : '';
    return el('span', { class: `result result-${a.result}` }, (RESULT[a.result] || a.result) + detail);
  }
  // Desired vs live, per kind; any side may be null (unknown) or absent.
  // Rows: ['both', name, desired, live, differs?] or ['desired'|'live', name, value] (one wide cell).
  function desiredLive(kind, d, l) {
    if (!d && !l) return null;
    d = d || {}; const known = !!l; l = l || {};
    const v = (x) => (x == null ? el('span', { class: 'muted' }, known ? '–' : 'unknown') : Array.isArray(x) ? list(x) : x instanceof Node ? x : String(x));
    const code = (x) => el('code', {}, x);
    let rows;
    if (kind === 'security-group') {
      rows = [['both', 'Rules', d.rules, l.rules && l.rules.map((r) => [code(r.rule), r.ours ? '' : el('span', { class: 'badge foreign' }, 'not ours')])],
        ['desired', 'Management', d.management], ['live', 'Group id', l.id && code(l.id)]];
    } else if (kind === 'cluster') {
      rows = [['both', 'Groups', d.groups, l.instances && l.instances.map((i) => [code(i.id), `: ${(i.groups || []).join(', ')}`,
        i.missing && i.missing.length ? el('span', { class: 'bad' }, ` missing ${i.missing.join(', ')}`) : '']),
        l.instances && l.instances.some((i) => i.missing && i.missing.length)]];
    } else if (kind === 'service') {
      const counts = l.desiredCount == null ? null : `${l.runningCount ?? '?'} running / ${l.desiredCount} desired${l.pendingCount ? `, ${l.pendingCount} pending` : ''}`;
      rows = [['both', 'Replicas', d.replicas, counts, d.replicas != null && l.desiredCount != null && (d.replicas !== l.desiredCount || d.replicas !== l.runningCount)],
        ['both', 'Launch type', d.launchType, l.launchType], ['both', 'Scheduling', d.schedulingStrategy, l.schedulingStrategy], ['live', 'Status', l.status]];
    } else if (kind === 'target-group') {
      rows = [['both', 'Health check', d.healthCheckPath, l.healthCheckPath], ['desired', 'Membership', d.membership],
        ['live', 'Targets', l.targets && (l.targets.length ? l.targets.map((t) => [code(t.target), ' ', el('span', { class: 'health', 'data-health': t.state }, t.state)]) : 'none')]];
    } else if (kind === 'load-balancer') {
      rows = [['both', 'Security groups', d.groups, l.groups], ['live', 'Listeners', l.listeners], ['live', 'DNS name', l.dnsName]];
    } else return null;
    const scalar = (x) => x != null && typeof x !== 'object';
    const body = rows.map(([side, name, a, b, diff]) => {
      if (side !== 'both') return a == null ? null : el('tr', { 'data-side': side }, el('th', { scope: 'row' }, name), el('td', { colspan: 2 }, v(a)));
      const off = diff ?? (scalar(a) && scalar(b) && String(a) !== String(b));
      return el('tr', { class: off ? 'off' : null }, el('th', { scope: 'row' }, name, off ? el('span', { class: 'bad' }, ' ≠') : ''),
        el('td', {}, a == null ? el('span', { class: 'muted' }, '–') : v(a)), el('td', {}, v(b)));
    });
    return el('table', { class: 'dv' }, el('thead', {}, el('tr', {}, el('td', {}), el('th', { scope: 'col' }, 'Desired'), el('th', { scope: 'col' }, 'Live'))), el('tbody', {}, body));
  }

  // ---- render: timeline ----------------------------------------------------
  function addEvents(events) {
    const ol = $('timeline');
    for (const ev of events) {
      if (!ev || typeof ev.time !== 'number') continue;
      const key = `${ev.time}|${ev.kind}|${ev.unit}|${ev.message}`;
      if (S.seen.has(key)) continue; // replayed after a reconnect
      S.seen.add(key);
      ol.querySelector('.empty')?.remove();
      const li = el('li', { 'data-kind': ev.kind, 'data-unit': ev.unit || null, class: S.mode === 'polling' ? 'inferred' : null },
        el('time', { datetime: new Date(ev.time * 1000).toISOString() }, clock(ev.time)), ' ',
        el('span', { class: 'tkind' }, ev.kind), ' ', ev.unit ? el('span', { class: 'tunit' }, ev.unit) : '', ev.unit ? ' ' : '',
        el('span', { class: 'msg' }, ev.message));
      let i = S.events.findIndex((e) => e.time < ev.time); // newest first
      if (i < 0) i = S.events.length;
      ol.insertBefore(li, S.events[i]?.li || null);
      S.events.splice(i, 0, { time: ev.time, key, li });
      while (S.events.length > TIMELINE_MAX) { const old = S.events.pop(); old.li.remove(); S.seen.delete(old.key); }
    }
  }

  setInterval(() => { tick(); if (S.status) renderApi(); }, 1000);
  connect();
})();
