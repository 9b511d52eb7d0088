// The account's support addresses with live status badges (refreshed every few seconds).
import { useApi, ErrorBox, PageTitle, Spinner } from '../components.js';
import { html } from '../html.js';
import { AddressBadges, stateReason } from '../status.js';

export function AddressesPage({ user, account }) {
  const { data, error, loading } = useApi('/support_addresses', { every: 5000 });
  const addresses = data ? data.support_addresses : [];
  return html`<div class="page">
    <div class="page-head">
      <${PageTitle}>Support addresses<//>
      ${user.role === 'admin' && html`<a class="button primary" href="#/connect">Connect an address</a>`}
    </div>
    <p class="lead">Mail to these addresses becomes tickets; notifications leave through each address's own mail
      server when it is connected and verified. Mail forwards to <strong>${account.system_address}</strong>.</p>
    <${ErrorBox} error=${error} />
    ${loading && !data && html`<${Spinner} label="Loading the addresses…" />`}
    ${data && html`<table class="list">
      <caption class="visually-hidden">Support addresses and their status</caption>
      <thead><tr><th scope="col">Address</th><th scope="col">Status</th><th scope="col">Sends through</th></tr></thead>
      <tbody>${addresses.map((address) => html`<tr>
        <td data-label="Address"><a href=${`#/addresses/${encodeURIComponent(address.email)}`}>${address.email}</a>
          <div class="sub">${address.name}</div></td>
        <td data-label="Status"><${AddressBadges} address=${address} />
          ${stateReason(address) && html`<div class="sub reason">${stateReason(address)}</div>`}</td>
        <td data-label="Sends through">${address.connector
          ? `${address.connector.host}:${address.connector.port} (${address.connector.tls_mode})`
          : address.kind === 'system' ? 'Relaydesk' : 'Relaydesk (forwarding only)'}</td>
      </tr>`)}</tbody>
    </table>`}
    ${data && addresses.length <= 1 && html`<p>Only the system address so far.
      ${user.role === 'admin' && html` <a href="#/connect">Connect your support address</a> to send through your own mail server.`}</p>`}
  </div>`;
}
