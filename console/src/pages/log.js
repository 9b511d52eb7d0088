// The delivery log: every notification with the server's reply and status (filtered by status, recipient,
// address, ticket; the newest page refreshed, older pages on demand through the API's cursor), what is held or deferred, the dead-letter queue with redrive, and suspended tickets.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Card, ErrorBox, Notice, PageTitle, Spinner, StatusBadge, useApi, when } from '../components.js';
import { html } from '../html.js';

const TABS = [['notifications', 'Notifications'], ['held', 'Held and deferred'], ['dead', 'Dead letters'],
  ['suspended', 'Suspended tickets']];
const STATUSES = ['', 'queued', 'delivered', 'waiting', 'deferred', 'failed', 'auth_failed', 'held', 'bounced'];

function lastReply(row) {
  const attempt = row.attempts[row.attempts.length - 1];
  if (!attempt) return 'not tried yet';
  const reply = attempt.reply || '';
  const code = [attempt.smtp_code, attempt.enhanced_status].filter((part) => part && !reply.includes(String(part)));
  return [...code, reply].filter(Boolean).join(' ') || '–';
}

function route(row) {
  const attempt = row.attempts[row.attempts.length - 1];
  if (!attempt || !attempt.route) return '–';
  return attempt.route.startsWith('connector:') ? `your server (${attempt.route.slice(10)})` : 'Relaydesk (SES)';
}

export function LogPage({ user, query }) {
  const tab = query.get('tab') || 'notifications';
  const go = (key) => { window.location.hash = `#/log?tab=${key}`; };
  return html`<div class="page">
    <${PageTitle}>Delivery log<//>
    <div class="tabs" role="tablist" aria-label="Delivery log">
      ${TABS.map(([key, label]) => html`<button type="button" role="tab" aria-selected=${tab === key}
        class=${tab === key ? 'tab current' : 'tab'} onClick=${() => go(key)}>${label}</button>`)}
    </div>
    ${tab === 'notifications' && html`<${Notifications} query=${query} />`}
    ${tab === 'held' && html`<${HeldAndDeferred} />`}
    ${tab === 'dead' && html`<${DeadLetters} admin=${user.role === 'admin'} />`}
    ${tab === 'suspended' && html`<${Suspended} admin=${user.role === 'admin'} />`}
  </div>`;
}

function Notifications({ query }) {
  const [filters, setFilters] = useState({ status: query.get('status') || '', recipient: query.get('recipient') || '',
    address: query.get('address') || '', ticket_id: query.get('ticket') || '' });
  const search = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
  const log = useApi(`/deliveries${search ? `?${search}` : ''}`, { every: 5000 }); // the newest page, kept fresh
  const [older, setOlder] = useState({ rows: [], cursor: undefined, loading: false, error: null, search });
  if (older.search !== search) setOlder({ rows: [], cursor: undefined, loading: false, error: null, search });
  const next = older.cursor === undefined ? log.data && log.data.next_cursor : older.cursor;
  const loadOlder = async () => {
    setOlder((current) => ({ ...current, loading: true, error: null }));
    try {
      const params = new URLSearchParams(search);
      params.set('cursor', next);
      const page = await api('GET', `/deliveries?${params}`);
      setOlder((current) => (current.search !== search ? current
        : { ...current, rows: [...current.rows, ...page.deliveries], cursor: page.next_cursor, loading: false }));
    } catch (failure) {
      setOlder((current) => ({ ...current, loading: false, error: failure }));
    }
  };
  const seen = new Set(log.data ? log.data.deliveries.map((row) => row.notification_id) : []);
  const rows = log.data ? [...log.data.deliveries, ...older.rows.filter((row) => !seen.has(row.notification_id))] : [];
  const set = (name) => (event) => setFilters({ ...filters, [name]: event.target.value.trim() });
  return html`<div role="tabpanel">
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filters">
      <label>Status <select value=${filters.status} onChange=${set('status')}>
        ${STATUSES.map((s) => html`<option value=${s}>${s ? s.replace('_', ' ') : 'any'}</option>`)}</select></label>
      <label>Recipient <input type="search" value=${filters.recipient} onChange=${set('recipient')} placeholder="jane@" /></label>
      <label>Support address <input type="search" value=${filters.address} onChange=${set('address')} placeholder="support@…" /></label>
      <label>Ticket <input type="search" value=${filters.ticket_id} onChange=${set('ticket_id')} /></label>
    </form>
    <${ErrorBox} error=${log.error} />
    ${!log.data && !log.error && html`<${Spinner} label="Loading the log…" />`}
    ${log.data && rows.length === 0 && !next && html`<p>No notification matches.</p>`}
    ${log.data && rows.length === 0 && next && html`<p>No notification matches among the most recent tickets.</p>`}
    ${log.data && rows.length > 0 && html`<table class="list log">
      <caption class="visually-hidden">Notifications, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Status</th><th scope="col">Ticket</th>
        <th scope="col">To</th><th scope="col">Sent through</th><th scope="col">Server reply</th></tr></thead>
      <tbody>${rows.map((row) => html`<tr>
        <td data-label="When">${when(row.at)}</td>
        <td data-label="Status"><${StatusBadge} status=${row.status} /></td>
        <td data-label="Ticket"><a href=${`#/tickets/${enc(row.ticket_id)}`}>${row.subject}</a>
          <div class="sub mono"><a href=${`#/log?ticket=${enc(row.ticket_id)}`}>${row.ticket_id}</a> · from ${row.support_address}</div></td>
        <td data-label="To">${row.recipients.join(', ')}</td>
        <td data-label="Sent through">${route(row)}</td>
        <td data-label="Server reply" class="mono reply">${lastReply(row)}
          ${row.attempts.length > 1 && html`<details><summary>${row.attempts.length} attempts</summary><ol>
            ${row.attempts.map((a) => html`<li>${when(a.at)}: ${a.status} ${a.smtp_code || ''} ${a.reply}</li>`)}</ol></details>`}</td>
      </tr>`)}</tbody></table>`}
    <${ErrorBox} error=${older.error} />
    ${log.data && next && html`<div class="actions">
      <button type="button" onClick=${loadOlder} disabled=${older.loading}>Older notifications</button>
      ${older.loading && html`<${Spinner} label="Reading older tickets…" />`}</div>`}
  </div>`;
}

// Deferred notifications can sit on any ticket, not only on the newest page of the log: the list walks the log's
// pages (status deferred; each request reads at most 100 tickets) up to DEFERRED_PAGES requests per look, and says
// when older tickets were left unsearched, with a button that searches the next stretch.
const DEFERRED_PAGES = 10;
const DEFERRED_REFRESH_MS = 30000;

async function deferredStretch(cursor) {
  const rows = [];
  let next = cursor;
  let requests = 0;
  do {
    const params = new URLSearchParams({ status: 'deferred' });
    if (next) params.set('cursor', next);
    const page = await api('GET', `/deliveries?${params}`);
    rows.push(...page.deliveries);
    next = page.next_cursor;
    requests += 1;
  } while (next && requests < DEFERRED_PAGES);
  return { rows, next };
}

function useDeferred() {
  const [newest, setNewest] = useState({ rows: null, next: null, error: null });
  const [older, setOlder] = useState({ rows: [], next: undefined, loading: false, error: null });
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    const look = async () => {
      try {
        const stretch = await deferredStretch(null);
        if (alive.current) setNewest({ ...stretch, error: null });
      } catch (error) {
        if (alive.current) setNewest((current) => ({ ...current, error }));
      }
    };
    look();
    const timer = setInterval(look, DEFERRED_REFRESH_MS);
    return () => { alive.current = false; clearInterval(timer); };
  }, []);
  const next = older.next === undefined ? newest.next : older.next;
  const searchOlder = async () => {
    setOlder((current) => ({ ...current, loading: true, error: null }));
    try {
      const stretch = await deferredStretch(next);
      if (alive.current) setOlder((current) => ({ rows: [...current.rows, ...stretch.rows], next: stretch.next, loading: false, error: null }));
    } catch (error) {
      if (alive.current) setOlder((current) => ({ ...current, loading: false, error }));
    }
  };
  const seen = new Set();
  const rows = newest.rows === null ? null : [...newest.rows, ...older.rows].filter((row) => {
    if (seen.has(row.notification_id)) return false;
    seen.add(row.notification_id);
    return true;
  });
  return { rows, next, error: newest.error || older.error, loading: older.loading, searchOlder };
}

// Held notifications, oldest first: the first page kept fresh, the next pages (the API's cursor) on demand.
function useHeld() {
  const first = useApi('/held_notifications', { every: 5000 });
  const [more, setMore] = useState({ rows: [], cursor: undefined, loading: false, error: null });
  const next = more.cursor === undefined ? first.data && first.data.next_cursor : more.cursor;
  const loadMore = async () => {
    setMore((current) => ({ ...current, loading: true, error: null }));
    try {
      const page = await api('GET', `/held_notifications?${new URLSearchParams({ cursor: next })}`);
      setMore((current) => ({ rows: [...current.rows, ...page.held], cursor: page.next_cursor, loading: false, error: null }));
    } catch (error) {
      setMore((current) => ({ ...current, loading: false, error }));
    }
  };
  const seen = new Set(first.data ? first.data.held.map((n) => n.notification_id) : []);
  const rows = first.data ? [...first.data.held, ...more.rows.filter((n) => !seen.has(n.notification_id))] : null;
  return { rows, next, error: first.error || more.error, loading: more.loading, loadMore };
}

function HeldAndDeferred() {
  const held = useHeld();
  const deferred = useDeferred();
  return html`<div role="tabpanel">
    <${Card} title="Held: waiting for a fix (credentials or TLS)" id="held-list">
      <${ErrorBox} error=${held.error} />
      ${held.rows && held.rows.length === 0 && html`<p>Nothing is held.</p>`}
      ${held.rows && held.rows.length > 0 && html`<ul class="plain">${held.rows.map((n) => html`<li>
        <strong>${n.subject}</strong> to ${n.recipients.join(', ')} <span class="sub">(from ${n.support_address},
        since ${when(n.created_at)})</span> · <a href=${`#/addresses/${enc(n.support_address)}`}>fix the address</a></li>`)}</ul>`}
      ${held.rows && held.next && html`<div class="actions">
        <button type="button" onClick=${held.loadMore} disabled=${held.loading}>More held notifications</button>
        ${held.loading && html`<${Spinner} label="Reading more held notifications…" />`}</div>`}
    <//>
    <${Card} title="Deferred: retried by themselves" id="deferred-list">
      <${ErrorBox} error=${deferred.error} />
      ${deferred.rows === null && !deferred.error && html`<${Spinner} label="Looking through the log…" />`}
      ${deferred.rows && deferred.rows.length === 0 && html`<p>${deferred.next ? 'Nothing is deferred on the most recently updated tickets.' : 'Nothing is deferred.'}</p>`}
      ${deferred.rows && deferred.rows.length > 0 && html`<ul class="plain">${deferred.rows.map((row) => html`<li>
        <strong><a href=${`#/tickets/${enc(row.ticket_id)}`}>${row.subject}</a></strong> to ${row.recipients.join(', ')}${' '}
        <span class="sub">(from ${row.support_address}, ${when(row.at)})</span>: <span class="mono">${lastReply(row)}</span></li>`)}</ul>`}
      ${deferred.rows && deferred.next && html`<p class="sub">Older tickets were not searched yet.</p>
        <div class="actions"><button type="button" onClick=${deferred.searchOlder} disabled=${deferred.loading}>Search older tickets</button>
        ${deferred.loading && html`<${Spinner} label="Reading older tickets…" />`}</div>`}
    <//>
  </div>`;
}

function DeadLetters({ admin }) {
  const letters = useApi('/dead_letters', { every: 10000 });
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const redrive = async (ids) => {
    setError(null);
    try {
      setResult(await api('POST', '/dead_letters/redrive', ids ? { notification_ids: ids } : { all: true }));
      letters.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<div role="tabpanel">
    <p>Notifications that failed every delivery attempt wait here. Send them again once the cause is fixed.</p>
    <${ErrorBox} error=${error || letters.error} />
    ${result && html`<${Notice} tone="ok">${result.redriven.length} sent again${result.not_found.length
      ? `; ${result.not_found.length} no longer in the queue` : ''}.<//>`}
    ${!letters.data && !letters.error && html`<${Spinner} label="Reading the dead-letter queue…" />`}
    ${letters.data && letters.data.dead_letters.length === 0 && html`<p>The dead-letter queue is empty.</p>`}
    ${letters.data && letters.data.dead_letters.length > 0 && html`<table class="list">
      <thead><tr><th scope="col">Notification</th><th scope="col">To</th><th scope="col">Last error</th><th scope="col">Action</th></tr></thead>
      <tbody>${letters.data.dead_letters.map((d) => html`<tr>
        <td data-label="Notification" class="mono">${d.notification_id}<div class="sub">ticket ${d.ticket_id || '–'}</div></td>
        <td data-label="To">${d.recipients.join(', ')}</td>
        <td data-label="Last error" class="mono reply">${d.last_error}</td>
        <td data-label="Action">${admin && html`<button type="button" class="small" onClick=${() => redrive([d.notification_id])}>Send again</button>`}</td>
      </tr>`)}</tbody></table>
      ${admin && html`<div class="actions"><button type="button" onClick=${() => redrive(null)}>Send all again</button></div>`}`}
  </div>`;
}

const REASONS = {
  manual_forward: 'forwarded by hand from a mail client (set the forward up on the server instead)',
  from_support_address: 'sent from one of your own support addresses (a loop)',
  rate_limited: 'too many mails from this sender in an hour',
  spam: 'marked as spam',
  dmarc_fail: 'failed the sender domain’s DMARC check',
};

function Suspended({ admin }) {
  const list = useApi('/suspended_tickets', { every: 5000 });
  const [error, setError] = useState(null);
  const [message, setMessage] = useState('');
  const act = async (method, path, done) => {
    setError(null);
    try {
      await api(method, path, method === 'POST' ? {} : undefined);
      setMessage(done);
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<div role="tabpanel">
    <${ErrorBox} error=${error || list.error} />
    ${message && html`<${Notice} tone="ok">${message}<//>`}
    ${list.data && list.data.tickets.length === 0 && html`<p>No suspended ticket.</p>`}
    ${list.data && list.data.tickets.length > 0 && html`<ul class="plain">${list.data.tickets.map((t) => html`<li class="suspended">
      <strong>${t.subject}</strong> from ${t.requester} <span class="sub">(${when(t.created_at)}, to ${t.support_address})</span>
      <div>Suspended: ${REASONS[t.reason] || t.reason}${t.explanation ? `. ${t.explanation}` : ''}</div>
      ${admin && html`<div class="actions">
        <button type="button" class="small" onClick=${() => act('POST', `/suspended_tickets/${t.ticket_id}/recover`, `“${t.subject}” is a normal ticket now.`)}>Recover</button>
        <button type="button" class="small danger" onClick=${() => act('DELETE', `/suspended_tickets/${t.ticket_id}`, `“${t.subject}” was deleted.`)}>Delete</button>
      </div>`}
    </li>`)}</ul>`}
  </div>`;
}
