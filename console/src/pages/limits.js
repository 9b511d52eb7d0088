// The Limits panel of an address's page: the sending limits in force beside the provider's, lowered by an admin (the
// server refuses a value above a provider's published limit and its words are shown) or reset to the provider's,
// and how many of the address's notifications wait for their turn right now.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Badge, Card, ErrorBox, Field, Notice, Spinner, useApi } from '../components.js';
import { html } from '../html.js';

// The four limits every provider has first; a daily message count only where one applies.
const LABELS = {
  messages_per_minute: 'Messages per minute',
  recipients_per_day: 'Recipients per day',
  recipients_per_message: 'Recipients per message',
  connections: 'Concurrent connections',
  messages_per_day: 'Messages per day',
};

const number = (value) => (value === null || value === undefined ? 'no limit' : value.toLocaleString('en-US'));

function shownRows(limits) {
  return Object.keys(LABELS).map((name) => limits.find((row) => row.name === name))
    .filter((row) => row && (row.name !== 'messages_per_day' || row.value !== null || row.lowered));
}

// The form as the API takes it: every limit typed that is not the provider's own figure (those follow the
// provider's). What is typed goes as it is: the server checks it and says what is wrong.
function limitsBody(form, rows) {
  const body = {};
  rows.forEach((row) => {
    const typed = String(form[row.name] ?? '').trim();
    if (typed === '') return;
    const value = Number(typed);
    if (value !== row.provider_value) body[row.name] = Number.isNaN(value) ? typed : value;
  });
  return body;
}

export function LimitsCard({ email }) {
  const path = `/support_addresses/${enc(email)}/limits`;
  const { data, error, reload } = useApi(path);
  const waiting = useApi(`/deliveries?status=waiting&address=${enc(email)}`, { every: 10000 });
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState({});
  const [refusal, setRefusal] = useState(null);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);

  const send = async (method, body, done) => {
    setRefusal(null);
    setMessage('');
    setBusy(true);
    try {
      await api(method, path, body);
      setEditing(false);
      setMessage(done);
      reload();
    } catch (failure) {
      setRefusal(failure);
    } finally {
      setBusy(false);
    }
  };

  if (!data) {
    return html`<${Card} title="Sending limits" id="limits"><${ErrorBox} error=${error} />
      ${!error && html`<${Spinner} label="Loading the limits…" />`}<//>`;
  }
  const rows = shownRows(data.limits);
  const provider = data.published ? `${data.provider_label}'s limit` : 'Default';
  const lowered = rows.some((row) => row.lowered);
  const open = () => {
    setForm(Object.fromEntries(rows.map((row) => [row.name, row.value === null ? '' : String(row.value)])));
    setRefusal(null);
    setMessage('');
    setEditing(true);
  };
  const submit = (event) => {
    event.preventDefault();
    send('PUT', limitsBody(form, rows), 'Saved. The relay applies the new limits to its next batch of notifications.');
  };
  const waitingCount = waiting.data ? waiting.data.deliveries.length : 0;
  return html`<${Card} title="Sending limits" id="limits">
    <p>${data.published
      ? html`Relaydesk keeps this mailbox under <strong>${data.provider_label}</strong>'s published sending limits.
          You can lower them (when other programs send from the same mailbox, say), never raise them above the
          provider's.`
      : html`Limits for <strong>${data.provider_label}</strong>: safe defaults. Set them to what your server allows.`}</p>
    <table class="list limits">
      <caption class="visually-hidden">Sending limits of ${email}</caption>
      <thead><tr><th scope="col">Limit</th><th scope="col">In force</th><th scope="col">${provider}</th></tr></thead>
      <tbody>${rows.map((row) => html`<tr data-limit=${row.name}>
        <th scope="row">${LABELS[row.name]}</th>
        <td class="value" data-label="In force">${number(row.value)}${row.lowered
          && html` <${Badge} tone="neutral">lowered<//>`}</td>
        <td class="provider" data-label=${provider}>${number(row.provider_value)}</td>
      </tr>`)}</tbody>
    </table>
    <p class="sub">The relay reads the limits with each batch: a change applies to its next batch of
      notifications. Over a limit, notifications wait for their turn; they are not refused or lost.</p>
    ${waiting.data && html`<p class="waiting" role="status">${waitingCount === 0
      ? 'No notification of this address is waiting for its limit right now.'
      : html`<${Badge} tone="wait">waiting<//> ${waitingCount === 1 ? '1 notification of this address is'
          : `${waitingCount} notifications of this address are`} waiting for its turn under the limit right now.${' '}
          <a href=${`#/log?status=waiting&address=${enc(email)}`}>See them in the delivery log</a>.`}</p>`}
    ${message && html`<${Notice} tone="ok">${message}<//>`}
    <${ErrorBox} error=${refusal} onDismiss=${() => setRefusal(null)} />
    ${!editing && html`<div class="actions">
      <button type="button" onClick=${open}>${data.published ? 'Lower limits' : 'Change limits'}</button>
      ${lowered && html`<button type="button" disabled=${busy} onClick=${() => send('DELETE', undefined,
        `Reset: ${data.provider_label}'s limits apply again from the relay's next batch.`)}>Reset to the provider's limits</button>`}
    </div>`}
    ${editing && html`<form class="inline-form" onSubmit=${submit} noValidate>
      <fieldset><legend>Limits of ${email}</legend><div class="row">
        ${rows.map((row) => html`<${Field} label=${LABELS[row.name]}
          hint=${data.published && row.provider_value !== null ? `at most ${number(row.maximum)} (${data.provider_label})`
            : `1 to ${number(row.maximum)}; empty: ${row.provider_value === null ? 'no limit' : `the default, ${number(row.provider_value)}`}`}>
          <input name=${row.name} type="number" inputmode="numeric" min="1" max=${row.maximum} step="1"
            value=${form[row.name]} onInput=${(event) => { const { value } = event.target;
              setForm((current) => ({ ...current, [row.name]: value })); }} /><//>`)}
      </div></fieldset>
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>Save limits</button>
        <button type="button" onClick=${() => { setEditing(false); setRefusal(null); }}>Cancel</button>
      </div>
    </form>`}
  <//>`;
}
