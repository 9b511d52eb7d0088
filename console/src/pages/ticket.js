// One ticket as an agent works it: the thread (every comment, public or internal, oldest first), under each comment
// what became of its mail for every recipient (refreshed every few seconds), a reply box (public reply or internal
// note, with attachments uploaded straight to S3), and the status and the assignee.
import { useRef, useState } from 'preact/hooks';
import { api, enc, newRequestId, uploadFile } from '../api.js';
import { Badge, Card, ErrorBox, Notice, PageTitle, Spinner, StatusBadge, useApi, when } from '../components.js';
import { html } from '../html.js';
import { TicketStatusBadge } from './tickets.js';

const KIND_WORDS = { mail: 'by mail', reply: 'public reply', note: 'internal note' };

function size(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function routeWords(attempt) {
  if (!attempt || !attempt.route) return '';
  return attempt.route.startsWith('connector:') ? `through your server (${attempt.route.slice(10)})` : 'through Relaydesk';
}

// What the server said about one recipient: its code and enhanced status where its reply does not repeat them.
function serverWords(row) {
  const reply = row.reply || '';
  const codes = [row.smtp_code, row.enhanced_status].filter((part) => part && !reply.includes(String(part)));
  return [...codes, reply].filter(Boolean).join(' ');
}

// One mail the ticket sent: a row per recipient with its status and the server's words about it.
function Delivery({ notification }) {
  const last = notification.attempts[notification.attempts.length - 1];
  return html`<div class="delivery">
    <p class="delivery-head sub">Mail ${routeWords(last)}${last ? `, ${when(last.at)}` : ', not tried yet'}</p>
    <ul class="recipients">${notification.recipients.map((row) => html`<li>
      <span class="recipient">${row.recipient}</span>
      <${StatusBadge} status=${row.status} />
      ${serverWords(row) && html`<span class="mono reply">${serverWords(row)}</span>`}
      ${row.report && html`<span class="sub">(delivery report: ${row.report})</span>`}
    </li>`)}</ul>
  </div>`;
}

// A mail's own words first; what it quotes of the thread ("On ... wrote:" and the "> " lines) folded away.
function Body({ comment }) {
  const lines = comment.body.split('\n');
  const quote = comment.kind === 'mail' ? lines.findIndex((line) => line.startsWith('>')) : -1;
  let cut = quote;
  if (quote > 0 && /wrote:\s*$/.test(lines[quote - 1])) {
    // the attribution line, which a mail client may wrap: "On <date>, <name>" ... "wrote:"
    cut = quote - 1;
    for (let i = quote - 1; i >= Math.max(0, quote - 3); i -= 1) {
      if (/^On /.test(lines[i])) { cut = i; break; }
    }
  }
  if (cut <= 0) return html`<div class="comment-body">${comment.body}</div>`;
  return html`<div class="comment-body">${lines.slice(0, cut).join('\n').trimEnd()}</div>
    <details class="quoted"><summary>Quoted text (${lines.length - cut} lines)</summary>
      <div class="comment-body">${lines.slice(cut).join('\n')}</div></details>`;
}

function Comment({ comment, notifications }) {
  const sent = comment.notification_ids.map((id) => notifications[id]).filter(Boolean);
  const who = comment.agent ? comment.agent.name : comment.author;
  return html`<li class=${`comment comment-${comment.kind}`}>
    <div class="comment-head">
      <strong>${who}</strong>
      ${comment.kind === 'note' ? html`<${Badge} tone="warn">internal note<//>` : html`<span class="sub">${KIND_WORDS[comment.kind]}</span>`}
      ${comment.kind === 'mail' && !comment.public && html`<${Badge} tone="warn">private: not a participant<//>`}
      <span class="sub when">${when(comment.created_at)}</span>
    </div>
    <${Body} comment=${comment} />
    ${comment.body_truncated && html`<p class="sub">The text is cut here: the whole mail is kept in the raw mail store.</p>`}
    ${comment.attachments.length > 0 && html`<ul class="attachments" aria-label="Attachments">
      ${comment.attachments.map((a) => html`<li><span class="label">Attached:</span> ${a.filename} <span class="sub">(${a.content_type}, ${size(a.size)})</span></li>`)}
    </ul>`}
    ${comment.kind === 'note' && html`<p class="sub">Seen by agents only: mailed to nobody.</p>`}
    ${sent.map((n) => html`<${Delivery} notification=${n} />`)}
    ${comment.notification_ids.length > sent.length && html`<p class="sub">${comment.notification_ids.length - sent.length}
      older mail records are not shown.</p>`}
  </li>`;
}

function Composer({ ticket, onPosted }) {
  const [kind, setKind] = useState('reply');
  const [body, setBody] = useState('');
  const [files, setFiles] = useState([]);
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState('');
  const [error, setError] = useState(null);
  const requestId = useRef(null); // kept until the send succeeds: sending again after a failure is the same request
  const fileInput = useRef(null);
  const reset = () => {
    requestId.current = null;
    setBody('');
    setFiles([]);
    setStatus('');
    if (fileInput.current) fileInput.current.value = '';
  };
  const send = async (event) => {
    event.preventDefault();
    setError(null);
    if (!body.trim()) {
      setError({ message: 'Write something first.', action: '' });
      return;
    }
    if (!requestId.current) requestId.current = newRequestId();
    try {
      const keys = [];
      for (const [index, file] of files.entries()) {
        setBusy(`Uploading ${file.name} (${index + 1} of ${files.length})…`);
        keys.push(await uploadFile(ticket.ticket_id, file));
      }
      setBusy(kind === 'reply' ? 'Sending the reply…' : 'Adding the note…');
      const payload = { body, attachments: keys };
      if (kind === 'reply' && status) payload.status = status;
      const posted = await api('POST', `/tickets/${enc(ticket.ticket_id)}/${kind === 'reply' ? 'replies' : 'notes'}`,
        payload, { 'Idempotency-Key': requestId.current });
      reset();
      onPosted(kind === 'reply'
        ? `Reply sent to ${[ticket.requester, ...ticket.ccs].join(', ')}: its delivery shows in the thread.`
        : 'Internal note added (mailed to nobody).', posted);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy('');
    }
  };
  const suspended = ticket.status === 'suspended';
  return html`<${Card} title="Answer" id="composer">
    ${suspended && html`<${Notice} tone="warn">This ticket is suspended: recover it in the delivery log first.<//>`}
    <form onSubmit=${send} class="composer">
      <fieldset class="kind">
        <legend>Kind</legend>
        <label><input type="radio" name="kind" value="reply" checked=${kind === 'reply'}
          onChange=${() => setKind('reply')} /> Public reply</label>
        <label><input type="radio" name="kind" value="note" checked=${kind === 'note'}
          onChange=${() => setKind('note')} /> Internal note</label>
      </fieldset>
      <p class="hint" id="composer-to">${kind === 'reply'
        ? `Mailed from ${ticket.support_address} to ${[ticket.requester, ...ticket.ccs].join(', ')}${ticket.followers.length
          ? `; followers get a copy` : ''}, with your name.`
        : 'Seen by the account’s agents only; mailed to nobody.'}</p>
      <label for="composer-body" class="label composer-label">${kind === 'reply' ? 'Reply' : 'Note'}</label>
      <textarea id="composer-body" rows="6" value=${body} maxlength="20000" aria-describedby="composer-to"
        onInput=${(e) => setBody(e.target.value)}></textarea>
      <div class="row composer-row">
        <div class="field">
          <label for="composer-files">Attachments (optional)</label>
          <input id="composer-files" type="file" multiple ref=${fileInput}
            onChange=${(e) => setFiles(Array.from(e.target.files || []))} />
          <p class="hint">Up to 10 files, 20 MB each: PDF, images, text, office documents, ZIP.</p>
        </div>
        ${kind === 'reply' && html`<div class="field">
          <label for="composer-status">Then set the ticket</label>
          <select id="composer-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
            <option value="">as it is (a new ticket becomes open)</option><option value="open">open</option>
            <option value="pending">pending (waiting for the requester)</option><option value="solved">solved</option>
          </select></div>`}
      </div>
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button type="submit" class="primary" disabled=${!!busy || suspended}>${kind === 'reply' ? 'Send reply' : 'Add note'}</button>
        ${busy && html`<${Spinner} label=${busy} />`}
      </div>
    </form>
  <//>`;
}

function Properties({ ticket, user, onChanged }) {
  const [assignee, setAssignee] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const change = async (method, suffix, body, headers, done) => {
    setError(null);
    setBusy(true);
    try {
      await api(method, `/tickets/${enc(ticket.ticket_id)}${suffix}`, body, headers);
      onChanged(done);
      setAssignee('');
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const setStatus = (status) => change('PUT', '/status', { status }, { 'Idempotency-Key': newRequestId() },
    `The ticket is ${status} now.`);
  const assign = (email) => change('PUT', '/assignee', { assignee: email },
    {}, email ? `Assigned to ${email}.` : 'Nobody is assigned now.');
  const mine = ticket.assignee && ticket.assignee.email === user.email;
  return html`<${Card} title="Ticket" id="properties">
    <dl class="facts stacked">
      <dt>Status</dt><dd><${TicketStatusBadge} status=${ticket.status} /></dd>
      <dt>Requester</dt><dd>${ticket.requester}</dd>
      <dt>Support address</dt><dd>${ticket.support_address}</dd>
      <dt>CCs</dt><dd>${ticket.ccs.length ? ticket.ccs.join(', ') : '–'}</dd>
      <dt>Followers</dt><dd>${ticket.followers.length ? ticket.followers.join(', ') : '–'}</dd>
      <dt>Assignee</dt><dd>${ticket.assignee ? `${ticket.assignee.name} (${ticket.assignee.email || 'no address'})` : 'nobody'}</dd>
      <dt>Created</dt><dd>${when(ticket.created_at)}</dd>
    </dl>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    ${ticket.status !== 'suspended' && html`<div class="field">
      <label for="ticket-status">Status</label>
      <select id="ticket-status" value=${ticket.status} disabled=${busy}
        onChange=${(e) => e.target.value !== ticket.status && setStatus(e.target.value)}>
        ${ticket.status === 'new' && html`<option value="new" disabled>new</option>`}
        <option value="open">open</option><option value="pending">pending</option><option value="solved">solved</option>
      </select></div>`}
    <form class="assign" onSubmit=${(e) => { e.preventDefault(); if (assignee.trim()) assign(assignee.trim()); }}>
      <label for="ticket-assignee" class="label">Assign to (an agent’s sign-in address)</label>
      <div class="inline">
        <input id="ticket-assignee" type="email" value=${assignee} placeholder="ann@yourcompany.com"
          onInput=${(e) => setAssignee(e.target.value)} />
        <button type="submit" disabled=${busy || !assignee.trim()}>Assign</button>
      </div>
      <div class="actions">
        ${!mine && html`<button type="button" class="small" disabled=${busy} onClick=${() => assign(user.email)}>Assign to me</button>`}
        ${ticket.assignee && html`<button type="button" class="small" disabled=${busy} onClick=${() => assign(null)}>Unassign</button>`}
      </div>
    </form>
  <//>`;
}

export function TicketPage({ ticketId, user }) {
  const { data: ticket, error, reload } = useApi(`/tickets/${enc(ticketId)}`, { every: 4000 });
  const [message, setMessage] = useState('');
  if (!ticket) {
    return html`<div class="page"><p class="crumbs"><a href="#/tickets">Tickets</a></p><${PageTitle}>Ticket ${ticketId}<//>
      <${ErrorBox} error=${error} />${!error && html`<${Spinner} label="Loading the ticket…" />`}</div>`;
  }
  const notifications = Object.fromEntries(ticket.notifications.map((n) => [n.notification_id, n]));
  const named = new Set(ticket.comments.flatMap((c) => c.notification_ids));
  const other = ticket.notifications.filter((n) => !named.has(n.notification_id));
  const done = (words) => {
    setMessage(words);
    reload();
  };
  return html`<div class="page">
    <p class="crumbs"><a href="#/tickets">Tickets</a> › <span class="mono">${ticket.ticket_id}</span></p>
    <div class="page-head">
      <${PageTitle}>${ticket.subject || '(no subject)'}<//>
      <${TicketStatusBadge} status=${ticket.status} />
    </div>
    <p class="lead">${ticket.requester} wrote to ${ticket.support_address} · updated ${when(ticket.updated_at)}</p>
    ${ticket.status === 'suspended' && html`<${Notice} tone="warn">Suspended: ${ticket.suspension_explanation
      || ticket.suspension_reason}. An admin recovers or deletes it in the delivery log.<//>`}
    ${ticket.flags.length > 0 && html`<p class="sub">Flags: ${ticket.flags.join(', ')}</p>`}
    ${message && html`<${Notice} tone="ok">${message}<//>`}
    <${ErrorBox} error=${error} />
    <div class="ticket-layout">
      <div class="ticket-main">
        <section aria-labelledby="thread-title" class="thread">
          <h2 id="thread-title">Conversation (${ticket.comments.length + ticket.comments_omitted})</h2>
          ${ticket.comments_omitted > 0 && html`<p class="sub">${ticket.comments_omitted} older comments are not shown.</p>`}
          <ol class="comments">${ticket.comments.map((c) => html`<${Comment} comment=${c} notifications=${notifications} />`)}</ol>
          ${other.length > 0 && html`<div class="other-mail"><h3>Other mail from this ticket</h3>
            <p class="sub">The acknowledgement of a new ticket, a solved notice and the like.</p>
            ${other.map((n) => html`<${Delivery} notification=${n} />`)}</div>`}
        </section>
        <${Composer} ticket=${ticket} onPosted=${done} />
      </div>
      <aside class="ticket-side"><${Properties} ticket=${ticket} user=${user} onChanged=${done} /></aside>
    </div>
  </div>`;
}
