// The account's tickets, newest update first, a page at a time (the API's cursor), filtered by status, assignee
// and requester; the filters live in the URL (#/tickets?status=open&assignee=me), so a view can be bookmarked.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Badge, ErrorBox, PageTitle, Spinner, when } from '../components.js';
import { html } from '../html.js';

const STATUSES = [['', 'any'], ['new', 'new'], ['open', 'open'], ['pending', 'pending'], ['solved', 'solved'],
  ['suspended', 'suspended']];
const TONES = { new: 'warn', open: 'neutral', pending: 'wait', solved: 'muted', suspended: 'bad' };
const PAGE = 25;

export function TicketStatusBadge({ status }) {
  return html`<${Badge} tone=${TONES[status] || 'neutral'}>${status}<//>`;
}

// The assignee filter as the API takes it: `me` is the signed-in user's address, `none` the unassigned tickets.
function assigneeParam(choice, other, user) {
  if (choice === 'me') return user.email;
  if (choice === 'none') return 'none';
  if (choice === 'other') return other.trim();
  return '';
}

export function TicketsPage({ user, query }) {
  const filters = {
    status: query.get('status') || '', assignee: query.get('assignee') || '', other: query.get('agent') || '',
    requester: query.get('requester') || '',
  };
  const [other, setOther] = useState(filters.other);
  const [requester, setRequester] = useState(filters.requester);
  const [pages, setPages] = useState({ tickets: null, next: null, error: null, loading: true });
  const key = JSON.stringify(filters);

  const search = (cursor) => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (filters.status) params.set('status', filters.status);
    const assignee = assigneeParam(filters.assignee, filters.other, user);
    if (assignee) params.set('assignee', assignee);
    if (filters.requester) params.set('requester', filters.requester);
    if (cursor) params.set('cursor', cursor);
    return `/tickets?${params}`;
  };
  const generation = useRef(0); // the filters' generation: an answer for filters no longer shown is dropped
  const load = async (cursor) => {
    const mine = cursor ? generation.current : ++generation.current;
    setPages((previous) => (cursor ? { ...previous, loading: true, error: null }
      : { tickets: null, next: null, error: null, loading: true }));
    try {
      const page = await api('GET', search(cursor));
      if (mine !== generation.current) return;
      setPages((previous) => ({
        tickets: cursor ? [...(previous.tickets || []), ...page.tickets] : page.tickets,
        next: page.next_cursor, error: null, loading: false,
      }));
    } catch (failure) {
      if (mine === generation.current) setPages((previous) => ({ ...previous, error: failure, loading: false }));
    }
  };
  useEffect(() => { load(null); }, [key]);

  const go = (changes) => {
    const next = { ...filters, ...changes };
    const params = new URLSearchParams();
    if (next.status) params.set('status', next.status);
    if (next.assignee) params.set('assignee', next.assignee);
    if (next.assignee === 'other' && next.other) params.set('agent', next.other);
    if (next.requester) params.set('requester', next.requester);
    window.location.hash = `#/tickets${params.toString() ? `?${params}` : ''}`;
  };
  const submit = (event) => {
    event.preventDefault();
    go({ other, requester: requester.trim() });
  };

  const { tickets } = pages;
  return html`<div class="page">
    <${PageTitle}>Tickets<//>
    <p class="lead">Every ticket of the account, the most recently updated first.</p>
    <form class="filters" onSubmit=${submit} aria-label="Filters">
      <label>Status <select value=${filters.status} onChange=${(e) => go({ status: e.target.value })}>
        ${STATUSES.map(([value, label]) => html`<option value=${value}>${label}</option>`)}</select></label>
      <label>Assignee <select value=${filters.assignee} onChange=${(e) => go({ assignee: e.target.value })}>
        <option value="">anyone</option><option value="me">me</option><option value="none">unassigned</option>
        <option value="other">another agent…</option></select></label>
      ${filters.assignee === 'other' && html`<label>Agent's address <input type="email" value=${other}
        placeholder="ann@yourcompany.com" onInput=${(e) => setOther(e.target.value)} /></label>`}
      <label>Requester <input type="search" value=${requester} placeholder="jane@example.com"
        onInput=${(e) => setRequester(e.target.value)} /></label>
      <div class="filter-actions"><button type="submit">Apply</button></div>
    </form>
    <${ErrorBox} error=${pages.error} />
    ${tickets === null && pages.loading && html`<${Spinner} label="Loading the tickets…" />`}
    ${tickets && tickets.length === 0 && html`<p>No ticket matches.</p>`}
    ${tickets && tickets.length > 0 && html`<table class="list tickets">
      <caption class="visually-hidden">Tickets, most recently updated first</caption>
      <thead><tr><th scope="col">Subject</th><th scope="col">Status</th><th scope="col">Requester</th>
        <th scope="col">Assignee</th><th scope="col">Updated</th></tr></thead>
      <tbody>${tickets.map((ticket) => html`<tr>
        <td data-label="Subject"><a href=${`#/tickets/${enc(ticket.ticket_id)}`}>${ticket.subject || '(no subject)'}</a>
          <div class="sub mono">${ticket.ticket_id} · to ${ticket.support_address}</div></td>
        <td data-label="Status"><${TicketStatusBadge} status=${ticket.status} /></td>
        <td data-label="Requester">${ticket.requester}</td>
        <td data-label="Assignee">${ticket.assignee ? ticket.assignee.name : html`<span class="sub">unassigned</span>`}</td>
        <td data-label="Updated">${when(ticket.updated_at)}</td>
      </tr>`)}</tbody></table>`}
    ${pages.next && html`<div class="actions">
      <button type="button" onClick=${() => load(pages.next)} disabled=${pages.loading}>Older tickets</button>
      ${pages.loading && html`<${Spinner} label="Loading…" />`}</div>`}
  </div>`;
}
