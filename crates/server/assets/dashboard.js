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
//   operate     the control API: the token typed into the page (memory only),
//               reconcile-now (all, or one card) and confirm buttons.
//   helpers     el() builds DOM from text nodes only (no markup parsing); times are
//               <time data-unix> elements refreshed every second.
'use strict';
(() => {
  const POLL_MS = 5000, SSE_RETRY_MS = 30000, TIMELINE_MAX = 100;
  const KINDS = ['security-group', 'cluster', 'service', 'target-group', 'load-balancer'];
  const STATE = {
    'in-sync': ['✓', 'In sync'], drifted: ['!', 'Drifted'], correcting: ['↻', 'Correcting'],
    fighting: ['⚔', 'Fighting (held)'], paused: ['‖', 'Paused'], error: ['✕', 'Error'], pending: ['…', 'Not checked yet'],
    standby: ['⇢', 'Standby: the leading copy reconciles it'],
    unknown: ['?', 'Unknown'],
  };
  const RESULT = { applied: 'applied', 'already-done': 'already done', skipped: 'skipped', failed: 'failed' };
  const DISPOSITION = { apply: 'corrected', observe: 'left alone (observe-only)', report: 'reported only', info: 'info', held: 'held (see why: over the destructive cap, or a drastic config edit awaiting confirmation)' };
  // What made a resource's last successful pass run (status `verified_by`).
  const VERIFIED = { event: 'on an event', resync: 'by resync', edit: 'after an edit', startup: 'at start', retry: 'on retry', operator: 'on request', recheck: 'on a re-read' };
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
  const fill = (node, ...kids) => {
    node.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
  };
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (unix) => {
    const d = new Date(unix * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  function ago(unix) {
    const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  }
  function when(unix) {
    if (unix == null) return el('span', { class: 'muted' }, 'never');
    const d = new Date(unix * 1000);
    return el('time', { datetime: d.toISOString(), 'data-unix': unix, title: d.toLocaleString() }, ago(unix));
  }
  const tick = () => {
    for (const t of document.querySelectorAll('time[data-unix]')) t.textContent = ago(Number(t.dataset.unix));
  };
  const dl = (rows) => rows.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]);
  const list = (items) => (items && items.length
    ? el('ul', { class: 'plain' }, items.map((i) => el('li', {}, i)))
    : el('span', { class: 'muted' }, 'none'));
  const splitUnit = (unit) => { const i = unit.indexOf('/'); return [unit.slice(0, i), unit.slice(i + 1)]; };
  const announce = (text) => { $('announce').textContent = text; };
  const stateOf = (u) => (STATE[u.state] ? u.state : 'unknown');

  // ---- connection ----------------------------------------------------------
  let source = null, pollTimer = null;
  function setConn(mode) {
    S.mode = mode;
    const badge = $('conn');
    badge.dataset.conn = document.body.dataset.conn = mode;
    badge.textContent = {
      live: 'live', polling: 'polling every 5 s', disconnected: 'disconnected, retrying…', connecting: 'connecting…',
    }[mode];
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
      if (pollTimer) {
        setConn('polling');
        onStatus(s, true);
      }
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
      if (u.drift?.length || u.actions?.length) {
        S.memo.set(name, { at: u.last_pass_unix, drift: u.drift || [], actions: u.actions || [] });
      }
    }
    renderHeader(s);
    renderConfig(s.config);
    renderAddresses(s);
    renderApi();
    renderDaemon(s);
    renderUnits(s);
  }
  // Without the server's timeline (polling), events are inferred from two snapshots.
  function diffEvents(a, b) {
    const out = [], au = a.daemon?.units || {};
    const add = (kind, unit, message) => out.push({ time: Date.now() / 1000, kind, unit, message });
    for (const [name, u] of Object.entries(b.daemon?.units || {})) {
      const was = au[name];
      if (was && was.state !== u.state) add(u.state === 'error' ? 'error' : 'drift', name, `${label(was)} → ${label(u)}`);
      if (u.last_pass_unix === was?.last_pass_unix) continue;
      for (const x of u.actions || []) add('action', name, `${x.change?.kind}: ${RESULT[x.result] || x.result}`);
    }
    const error = b.config?.error;
    if (a.config?.error !== error) {
      add('config', null, error ? `config rejected: ${error.split('\n')[0]}` : `config accepted (generation ${b.config?.generation})`);
    }
    if (a.leadership?.role !== b.leadership?.role) add('leadership', null, `now ${b.leadership?.role}`);
    return out;
  }
  function pushApi(api) {
    const now = Date.now() / 1000, last = S.api[S.api.length - 1];
    const restarted = last && Object.keys(api).some((k) => (api[k]?.calls || 0) < (last.api[k]?.calls || 0));
    if (restarted) S.api = [];
    S.api.push({ t: now, api });
    // Keep one sample at least 60 s old as the base.
    while (S.api.length > 2 && now - S.api[1].t >= 60) S.api.shift();
  }
  // Counts only change with a new snapshot, so the rate runs up to now.
  function perMinute(svc, field) {
    if (S.api.length < 2) return null;
    const base = S.api[0], last = S.api[S.api.length - 1], dt = Date.now() / 1000 - base.t;
    if (dt < 2) return null;
    return (((last.api[svc]?.[field] || 0) - (base.api[svc]?.[field] || 0)) / dt) * 60;
  }

  // ---- render: header, config, addresses, API, reconciler -----------------
  function label(u) {
    return u.mode === 'observe' && u.state === 'drifted' ? 'Drifted (observe-only)' : STATE[stateOf(u)][1];
  }
  function renderHeader(s) {
    $('version').textContent = s.version ? `v${s.version}` : '';
    const units = Object.values(s.daemon?.units || {});
    const count = (st) => units.filter((u) => u.state === st).length;
    const parts = [['error', 'in error'], ['fighting', 'fought over'], ['drifted', 'drifted'], ['correcting', 'correcting']]
      .map(([st, words]) => [st, count(st), words]).filter(([, n]) => n > 0);
    let state = 'in-sync', text = `All ${units.length} resources in sync`;
    if (!units.length) [state, text] = ['unknown', s.daemon?.passes ? 'No resources reported' : 'Waiting for the first pass…'];
    else if (count('standby') === units.length) [state, text] = ['standby', `Follower: ${units.length} resources reconciled by the leading copy`];
    else if (parts.length) [state, text] = [parts[0][0], parts.map(([, n, words]) => `${n} ${words}`).join(', ')];
    const o = $('overall');
    if (o.dataset.state !== state || o.lastElementChild.textContent !== text) {
      o.dataset.state = state;
      fill(o, el('span', { class: 'icon', 'aria-hidden': 'true' }, STATE[state][0]), ' ', el('span', { class: 'text' }, text));
    }
    $('config-badge').hidden = !s.config?.error;
    const l = s.leadership || s.daemon?.leadership || {}, b = $('leader');
    const since = s.daemon?.leadership_since_unix;
    b.dataset.role = l.role || 'unknown';
    b.textContent = l.role === 'leader' ? 'leader'
      : l.role === 'follower' ? `follower${l.leader ? ` (leader: ${l.leader.split('/').pop()})` : ''}` : 'leadership unknown';
    b.title = (l.reason || (l.role === 'follower'
      ? `Task ${l.leader || '(none running)'} leads and writes; this copy reads only the election.`
      : 'Only the leader writes; followers read only the election.'))
      + (since ? ` Since ${new Date(since * 1000).toISOString()}.` : '');
  }
  function renderConfig(c) {
    if (!c) return;
    fill($('config'), dl([
      ['File', el('code', {}, c.path)],
      ['Generation', String(c.generation)],
      ['Loaded', when(c.loaded_at_unix)],
      ['Last check', [when(c.last_attempt_at_unix), ' ',
        c.last_reload_ok ? el('span', { class: 'ok' }, '✓ ok') : el('span', { class: 'bad' }, '✕ rejected')]],
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
    // Only a plain host name becomes a link.
    const link = (dns) => (/^[A-Za-z0-9.-]+$/.test(dns)
      ? el('a', { href: `http://${dns}/`, rel: 'noreferrer', class: 'dns' }, dns) : el('code', {}, dns));
    fill($('addresses'), addrs.length
      ? addrs.map((a) => el('li', {}, link(a.dnsName), el('span', { class: 'muted' }, ` ${a.loadBalancer}`)))
      : el('li', { class: 'muted' }, 'not known yet'));
  }
  function renderApi() {
    const api = S.status?.api;
    $('api-panel').hidden = !api;
    if (!api) return;
    const fmt = (v) => (v == null ? '…' : v.toFixed(v < 10 ? 1 : 0));
    fill($('api'), Object.keys(api).sort().map((svc) => {
      const c = api[svc] || {}, th = perMinute(svc, 'throttled');
      return el('tr', { 'data-service': svc, class: th > 0 ? 'hot' : null },
        el('th', { scope: 'row' }, svc),
        el('td', {}, fmt(perMinute(svc, 'calls'))),
        el('td', {}, String(c.errors ?? 0)),
        el('td', {}, String(c.throttled ?? 0), th > 0 ? ` (${fmt(th)}/min)` : ''));
    }));
    // Client-side budgets: how much of each AWS rate class is left.
    const budgets = S.status?.daemon?.api_budgets || [];
    $('budgets').hidden = !budgets.length;
    fill($('budget-rows'), budgets.map((b) => {
      const pct = b.burst > 0 ? Math.round((100 * b.tokens) / b.burst) : 0;
      return el('tr', { 'data-class': b.class, class: pct < 20 ? 'hot' : null },
        el('th', { scope: 'row' }, b.class),
        el('td', {}, el('meter', { min: '0', max: String(b.burst), value: String(b.tokens), title: `${b.tokens.toFixed(1)} of ${b.burst} tokens` }), ` ${pct}%`),
        el('td', {}, `${b.per_second}/s`),
        el('td', {}, b.waited_seconds > 0 ? `${b.waited_seconds.toFixed(1)} s` : '0'));
    }));
  }
  function renderDaemon(s) {
    const d = s.daemon || {};
    fill($('daemon'), dl([
      ['Passes', String(d.passes ?? 0)],
      ['Last pass', [when(d.last_pass_unix), d.last_pass_seconds != null ? ` (${Math.round(d.last_pass_seconds * 1000)} ms${d.last_pass_scoped ? ', scoped to the due resources' : ''})` : '']],
      ['Full observation', when(d.last_complete_observation_unix)],
      ...(d.event_queue ? [['Events queue', queueState(d.event_queue)]] : []),
      ...Object.entries(s.notifications || {}).map(([name, t]) => [`Webhook ${name}`,
        el('span', { class: (t.failed || t.dropped || t.unresolved) ? 'error' : null },
          `${t.sent || 0} sent, ${t.failed || 0} failed, ${t.dropped || 0} dropped${t.unresolved ? ', URL not found' : ''}`)]),
    ]));
    const u = $('unknowns');
    u.hidden = !(d.unknowns && d.unknowns.length);
    fill(u, (d.unknowns || []).map((x) => el('li', {}, el('strong', {}, `? ${x.what}`), `: ${x.why}`)));
    const a = $('awaiting'), awaiting = d.awaiting_confirmation || [];
    a.hidden = !awaiting.length;
    fill(a, awaiting.map((x) => el('li', {}, el('strong', {}, `⏸ ${x.owner}`),
      `: the config edit (generation ${x.generation}) cut ${x.what}; its removals wait for "Confirm held removals" (Operate), ecs-reconciler confirm, SIGUSR1 or apply --allow-destructive`)));
  }

  // The events queue: working (drift seen as events arrive) or failing (resync covers it).
  function queueState(q) {
    const h = q.health || {}, ignored = Object.entries(q.ignored || {}).map(([k, n]) => `${n} ${k}`).join(', ');
    const state = h.state === 'receiving' ? 'receiving' : h.state === 'failing' ? 'failing' : 'starting';
    return el('span', { class: state === 'failing' ? 'error' : null, 'data-queue': state, title: q.url },
      state === 'receiving' ? 'receiving' : state === 'failing' ? `failing (${h.reason || h.class})` : 'not read yet',
      ` · resync every ${Math.round(q.resync_seconds || 0)} s · ${q.received || 0} events, ${q.triggering || 0} caused a pass`,
      ignored ? `, ignored: ${ignored}` : '', q.last_event_unix ? [' · last ', when(q.last_event_unix)] : '');
  }
  // Who made a change, from its CloudTrail record.
  function byText(by) {
    return `${by.call} by ${by.arn}${by.source_ip ? ` from ${by.source_ip}` : ''} at ${by.at}`;
  }

  // ---- render: resource cards ----------------------------------------------
  function renderUnits(s) {
    const units = s.daemon?.units || {}, box = $('units');
    const sched = new Map((s.daemon?.schedule || []).map((x) => [x.unit, x]));
    const rank = (unit) => KINDS.indexOf(splitUnit(unit)[0]);
    const names = Object.keys(units).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    if (!names.length) {
      return fill(box, el('p', { class: 'muted' }, s.daemon?.passes ? 'No resources.' : 'Waiting for the first pass…'));
    }
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
    const [kindFromName, nameRest] = splitUnit(name), kind = u.kind || kindFromName, st = stateOf(u);
    const id = `u-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`, memo = S.memo.get(name);
    const drift = u.drift?.length
      ? changes(u.state === 'correcting' ? 'Drift found and acted on' : 'Drift now', u.last_pass_unix, u.drift, u.actions)
      : memo && changes('Last drift', memo.at, memo.drift, memo.actions);
    return el('article', { class: 'unit', 'data-unit': name, 'data-state': st, 'data-mode': u.mode || null, 'aria-labelledby': id },
      el('header', {},
        el('span', { class: 'kind' }, kind.replace(/-/g, ' ')),
        el('h3', { id }, u.name || nameRest),
        u.mode && el('span', { class: `badge mode-${u.mode}` }, u.mode === 'observe' ? 'observe-only' : u.mode),
        el('span', { class: 'state', 'data-state': st },
          el('span', { 'aria-hidden': 'true' }, STATE[st][0]), ' ', el('span', { class: 'state-text' }, label(u)))),
      desiredLive(kind, u.desired, u.live),
      u.last_error && el('p', { class: 'error' }, el('strong', {}, 'Error: '), u.last_error,
        failures ? ` (${failures} failures in a row)` : ''),
      drift,
      u.changed_by && el('p', { class: 'changed-by' }, el('strong', {}, 'Last drift made by: '), byText(u.changed_by)),
      el('p', { class: 'checked muted' }, 'Checked ', when(u.last_pass_unix),
        u.verified_by ? ` (${VERIFIED[u.verified_by] || u.verified_by})` : '',
        u.last_success_unix !== u.last_pass_unix ? [' · last success ', when(u.last_success_unix)] : '',
        ' ', el('button', { type: 'button', class: 'reconcile', 'data-unit': name, disabled: !token, title: 'Needs the control token (Operate panel)' }, 'Reconcile now')));
  }
  function changes(title, at, drift, actions) {
    const same = (a, c) => a.change && ['kind', 'resource', 'before'].every((k) => a.change[k] === c[k]);
    const done = (c) => (actions || []).find((a) => same(a, c));
    const items = drift.map((c) => el('li', {},
      el('span', { class: 'ckind' }, c.kind), ' ', el('code', {}, c.before), ' → ', el('code', {}, c.after),
      el('div', { class: 'reason muted' }, c.reason),
      el('div', { class: 'did' }, 'Done: ', done(c) ? outcome(done(c)) : DISPOSITION[c.disposition] || c.disposition)));
    for (const a of actions || []) {
      if (!drift.some((c) => same(a, c))) items.push(el('li', {}, el('span', { class: 'ckind' }, a.change?.kind), ' ', outcome(a)));
    }
    return el('div', { class: 'changes' }, el('h4', {}, `${title} `, when(at)), el('ul', { class: 'plain' }, items));
  }
  function outcome(a) {
    const id = a.requestId || a.request_id, detail = a.reason || a.error;
    return el('span', { class: `result result-${a.result}` }, RESULT[a.result] || a.result, detail ? `: ${detail}` : '',
      id && el('span', { class: 'muted req', title: `AWS request id ${id}` }, ` (request ${id.slice(0, 8)}…)`));
  }
  // Desired vs live, per kind; any side may be null (unknown) or absent.
  // Rows: ['both', name, desired, live, differs?] or ['desired'|'live', name, value] (one wide cell).
  function desiredLive(kind, d, l) {
    if (!d && !l) return null;
    d = d || {}; const known = !!l; l = l || {};
    const v = (x) => (x == null ? el('span', { class: 'muted' }, known ? '–' : 'unknown')
      : Array.isArray(x) ? list(x) : x instanceof Node ? x : String(x));
    const code = (x) => el('code', {}, x), tag = (text, cls) => el('span', { class: `badge tag ${cls}` }, text);
    let rows;
    if (kind === 'security-group') {
      // Both sides use the same rule key, so they compare as strings.
      const want = new Set(d.rules || []), have = new Set((l.rules || []).map((r) => r.rule));
      rows = [['both', 'Rules',
        d.rules && d.rules.map((r) => [code(r), l.rules && !have.has(r) && tag('missing', 'bad')]),
        l.rules && l.rules.map((r) => [code(r.rule), d.rules && !want.has(r.rule) && tag('undeclared', 'bad'),
          r.ours && tag('ours', 'ours')])],
      ['desired', 'Management', d.management], ['live', 'Group id', l.id && code(l.id)]];
    } else if (kind === 'cluster') {
      const short = (l.instances || []).filter((i) => i.missing && i.missing.length);
      const n = l.instances?.length;
      rows = [['both', 'Groups', d.groups,
        l.instances && (short.length ? `${short.length} of ${n} instances lack some` : `on all ${n} instances`), short.length > 0],
      ['live', 'Instances', l.instances && l.instances.map((i) => [code(i.id), `: ${(i.groups || []).join(', ')}`,
        i.missing?.length > 0 && el('span', { class: 'bad' }, ` (missing ${i.missing.join(', ')})`)])]];
    } else if (kind === 'service') {
      const counts = l.desiredCount == null ? null
        : `${l.runningCount ?? '?'} running / ${l.desiredCount} desired${l.pendingCount ? `, ${l.pendingCount} pending` : ''}`;
      // `replicas` is "2" or a range "2-10" an autoscaler moves within.
      const min = d.replicasMin ?? Number(d.replicas), max = d.replicasMax ?? Number(d.replicas);
      const outside = (n) => n != null && (n < min || n > max);
      const off = d.replicas != null && l.desiredCount != null && (outside(l.desiredCount) || outside(l.runningCount));
      rows = [['both', 'Replicas', d.replicas, counts, off],
        ['both', 'Launch type', d.launchType, l.launchType],
        ['both', 'Scheduling', d.schedulingStrategy, l.schedulingStrategy],
        ['live', 'Status', l.status]];
    } else if (kind === 'target-group') {
      const health = (t) => [code(t.target), ' ', el('span', { class: 'health', 'data-health': t.state }, t.state)];
      rows = [['both', 'Health check', d.healthCheckPath, l.healthCheckPath],
        ['desired', 'Membership', d.membership],
        ['live', 'Targets', l.targets && (l.targets.length ? l.targets.map(health) : 'none')]];
    } else if (kind === 'load-balancer') {
      rows = [['both', 'Security groups', d.groups, l.groups],
        ['live', 'Listeners', l.listeners],
        ['live', 'DNS name', l.dnsName]];
    } else return null;
    const scalar = (x) => x != null && typeof x !== 'object';
    const body = rows.map(([side, name, a, b, diff]) => {
      if (side !== 'both') return a == null ? null : el('tr', {}, el('th', { scope: 'row' }, name), el('td', { colspan: 2 }, v(a)));
      const off = diff ?? (scalar(a) && scalar(b) && String(a) !== String(b));
      return el('tr', { class: off ? 'off' : null },
        el('th', { scope: 'row' }, name, off && el('span', { class: 'bad', title: 'differs' }, ' ≠')),
        el('td', {}, a == null ? el('span', { class: 'muted' }, '–') : v(a)),
        el('td', {}, v(b)));
    });
    const head = el('tr', {}, el('td', {}), el('th', { scope: 'col' }, 'Desired'), el('th', { scope: 'col' }, 'Live'));
    return el('table', { class: 'dv' }, el('thead', {}, head), el('tbody', {}, body));
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
        el('span', { class: 'tkind' }, ev.kind), ' ',
        ev.unit && [el('span', { class: 'tunit' }, ev.unit), ' '],
        el('span', { class: 'msg' }, ev.message),
        ev.by && el('span', { class: 'tby' }, ` — ${byText(ev.by)}`));
      let i = S.events.findIndex((e) => e.time < ev.time); // newest first
      if (i < 0) i = S.events.length;
      ol.insertBefore(li, S.events[i]?.li || null);
      S.events.splice(i, 0, { time: ev.time, key, li });
      while (S.events.length > TIMELINE_MAX) {
        const old = S.events.pop();
        old.li.remove();
        S.seen.delete(old.key);
      }
    }
  }

  // ---- operate: the control API (needs the daemon's token) -----------------
  // The token lives in this closure only: never in storage, the URL or the DOM
  // after it is typed (the field is cleared on a 401).
  let token = '';
  function operating(on) {
    for (const b of document.querySelectorAll('#operate button, .unit .reconcile')) b.disabled = !on || !token;
  }
  async function control(path, body, what) {
    const out = $('operate-result');
    out.textContent = `${what}…`;
    operating(false);
    try {
      const r = await fetch(path, {
        method: 'POST', cache: 'no-store', credentials: 'omit',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = parse(await r.text()) || {};
      if (r.status === 401) { token = ''; $('token').value = ''; }
      if (!r.ok) { out.textContent = `${what}: refused (${r.status}) ${answer.error || ''}`; return; }
      if (answer.converged != null) {
        out.textContent = `${what}: ${answer.converged ? 'converged' : `not converged (${answer.errors} errors)`}`;
      } else {
        out.textContent = `${what}: accepted${answer.drastic_edits_confirmed != null ? ` (${answer.drastic_edits_confirmed} drastic edits were waiting)` : ''}`;
      }
    } catch (e) {
      out.textContent = `${what}: the daemon did not answer (${e.message})`;
    } finally {
      operating(true);
    }
  }
  $('token').addEventListener('input', (e) => { token = e.target.value.trim(); operating(true); });
  $('operate').addEventListener('submit', (e) => e.preventDefault());
  $('reconcile-all').addEventListener('click', () => control('/api/v1/reconcile?wait=true', { resources: [] }, 'Reconcile everything'));
  $('confirm-held').addEventListener('click', () => control('/api/v1/confirm', {}, 'Confirm held removals'));
  $('units').addEventListener('click', (e) => {
    const b = e.target.closest('button.reconcile');
    if (b) control('/api/v1/reconcile?wait=true', { resources: [b.dataset.unit] }, `Reconcile ${b.dataset.unit}`);
  });

  setInterval(() => { tick(); if (S.status) renderApi(); }, 1000);
  connect();
})();
