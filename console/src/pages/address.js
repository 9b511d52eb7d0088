// One support address: its verification (verify again), the last error explained, held notifications (release),
// the connector (new credentials; host, port or TLS mode), its sending limits (pages/limits.js), and set default,
// disable, enable, delete.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import {
  Card, CopyButton, ErrorBox, Field, JobOutcome, Notice, PageTitle, Progress, Spinner, StatusBadge, useApi, useJob, when,
} from '../components.js';
import { html } from '../html.js';
import { AddressBadges, isVerified, stateReason } from '../status.js';
import { inConsoleTerms } from '../words.js';
import { LimitsCard } from './limits.js';
import { CaBundleField, CredentialFields } from './wizard.js';

export function AddressPage({ email, user }) {
  const path = `/support_addresses/${enc(email)}/details`;
  const [jobId, setJobId] = useState(null);
  const [jobKind, setJobKind] = useState(null);
  const { data, error, reload } = useApi(path, { every: jobId ? 2000 : 5000 });
  const [actionError, setActionError] = useState(null);
  const [message, setMessage] = useState('');
  const { job } = useJob(jobId, () => reload());
  const admin = user.role === 'admin';

  const act = async (method, suffix, body, done) => {
    setActionError(null);
    setMessage('');
    try {
      const result = await api(method, `/support_addresses/${enc(email)}${suffix}`, body);
      if (result && result.job_id) {
        setJobKind(result.kind);
        setJobId(result.job_id);
      }
      if (done) done(result);
      reload();
    } catch (failure) {
      setActionError(failure);
    }
  };

  if (!data) {
    return html`<div class="page"><${PageTitle}>${email}<//>
      <${ErrorBox} error=${error} />${!error && html`<${Spinner} label="Loading the address…" />`}</div>`;
  }
  const address = data.address;
  const connector = address.connector;
  const running = job && job.status === 'running';
  return html`<div class="page">
    <p class="crumbs"><a href="#/addresses">Support addresses</a> › ${address.email}</p>
    <div class="page-head">
      <${PageTitle}>${address.email}<//>
      <${AddressBadges} address=${address} />
    </div>
    <p class="lead">${address.name}${stateReason(address) ? ` · ${stateReason(address)}` : ''}</p>
    <${ErrorBox} error=${actionError} onDismiss=${() => setActionError(null)} />
    ${message && html`<${Notice} tone="ok">${message}<//>`}

    ${address.kind === 'system' && html`<${Notice}>This is your account's system address: Relaydesk receives it directly
      and always sends it through its own servers. It cannot use the connector or be removed.<//>`}

    ${data.explanation && html`<${Card} title="Last error" id="last-error">
      <div class="explanation" role="alert">
        <p><strong>${inConsoleTerms(data.explanation.summary)}</strong></p>
        ${data.explanation.fix && html`<p><span class="label">What to do: </span>${inConsoleTerms(data.explanation.fix)}</p>`}
      </div><//>`}

    ${address.kind !== 'system' && html`<${Card} title="Verification" id="verification"
      actions=${admin && html`<button type="button" disabled=${running}
        onClick=${() => act('POST', '/verification', {})}>Verify again</button>`}>
      <dl class="facts">
        <dt>Forwarding</dt><dd><${StatusBadge} status=${address.forwarding.status} />
          ${address.forwarding.verified_at && html` since ${when(address.forwarding.verified_at)}`}
          ${address.forwarding.error && html`<div class="sub">${address.forwarding.error}</div>`}</dd>
        <dt>Outbound</dt><dd><${StatusBadge} status=${address.outbound.status} />
          ${address.outbound.verified_at && html` since ${when(address.outbound.verified_at)}`}
          ${address.outbound.error && html`<div class="sub">${address.outbound.error}</div>`}</dd>
      </dl>
      ${job && jobKind === 'verify' && html`<${Progress} job=${job} /><${JobOutcome} job=${job} />`}
    <//>`}

    ${connector && html`<${Card} title="Held notifications" id="held"
      actions=${admin && data.held_notifications > 0 && html`<button type="button" onClick=${() => act('POST',
        '/held/release', {}, (r) => setMessage(`${r.released} notification(s) sent again.`))}>Release them now</button>`}>
      <p>${data.held_notifications === 0 ? 'No notification is waiting.'
        : `${data.held_notifications} notification(s) wait for a fix. They are sent again by themselves when
           new settings or credentials pass the test or a verification passes; release them by hand after a fix on
           your mail server.`}</p>
    <//>`}

    ${connector && html`<${ConnectorCard} address=${address} admin=${admin} busy=${running}
      onChange=${(body) => act('POST', '/connector', body)} job=${jobKind === 'rotate' ? job : null} />`}

    ${connector && admin && html`<${LimitsCard} email=${address.email} />`}

    ${data.provider && html`<${Card} title="Forwarding to Relaydesk" id="forwarding">
      <p>Your mail server must forward every mail of ${address.email} to${' '}
        <strong class="mono">${data.forwarding_target}</strong>${' '}<${CopyButton} text=${data.forwarding_target} /></p>
      <ol class="guide">${data.provider.forwarding.map((step) => html`<li>${step}</li>`)}</ol>
    <//>`}

    ${admin && address.kind !== 'system' && html`<${ActionsCard} address=${address} act=${act}
      setMessage=${setMessage} />`}
    <p><a href=${`#/log?address=${enc(address.email)}`}>Delivery log of this address</a></p>
  </div>`;
}

// How the connector signs in, in words, with the identifiers an admin looks up in Entra ID or Google Cloud.
const SIGN_IN_WORDS = {
  password: 'password (SMTP AUTH)',
  client_secret: 'Entra ID app with a client secret (OAuth 2.0)',
  client_certificate: 'Entra ID app with a certificate (OAuth 2.0)',
  service_account: 'Google service account with domain-wide delegation (XOAUTH2)',
};

// The sign-ins the rotate form offers: the address's own first; an Entra ID app may move between its client secret
// and a certificate (Microsoft recommends the certificate). A Google service account rotates its key.
function rotateGrants(connector) {
  if (connector.sign_in === 'service_account') return ['service_account'];
  if (connector.sign_in === 'client_certificate') return ['client_certificate', 'client_secret'];
  return ['client_secret', 'client_certificate'];
}

// The rotate form as the API takes it: the filled-in fields, and only the chosen sign-in's material.
function rotateBody(form, connector) {
  const body = Object.fromEntries(Object.entries(form).filter(([, value]) => value !== '' && value != null));
  if (body.port) body.port = Number(body.port);
  if (connector.auth_kind === 'oauth2') {
    const grant = body.oauth_grant || rotateGrants(connector)[0];
    const material = { client_secret: 'oauth_client_secret', client_certificate: 'oauth_certificate_pem',
      service_account: 'service_account_key' };
    Object.entries(material).forEach(([g, field]) => { if (g !== grant) delete body[field]; });
    if (grant === 'service_account') { delete body.oauth_tenant_id; delete body.oauth_client_id; }
  }
  delete body.oauth_grant;
  return body;
}

function SignInFacts({ connector }) {
  return html`
    <dt>Sign-in</dt><dd>${SIGN_IN_WORDS[connector.sign_in] || connector.auth_kind}</dd>
    ${connector.oauth_service_account && html`<dt>Service account</dt><dd class="mono">${connector.oauth_service_account}</dd>`}
    ${connector.oauth_tenant_id && html`<dt>Directory (tenant) ID</dt><dd class="mono">${connector.oauth_tenant_id}</dd>`}
    ${connector.oauth_client_id && html`<dt>${connector.sign_in === 'service_account' ? 'Client ID (delegation)' : 'Application (client) ID'}</dt>
      <dd class="mono">${connector.oauth_client_id}</dd>`}
    ${connector.oauth_certificate_thumbprint && html`<dt>Certificate thumbprint</dt>
      <dd class="mono">${connector.oauth_certificate_thumbprint}${connector.oauth_certificate_expires_at
        && html`<div class="sub">expires ${when(connector.oauth_certificate_expires_at)}</div>`}</dd>`}`;
}

function ConnectorCard({ address, admin, busy, onChange, job }) {
  const connector = address.connector;
  const [mode, setMode] = useState(null); // 'credentials' | 'connection'
  const [form, setForm] = useState({});
  // Functional updates: an event handler may run after a newer change (a file read finishing late).
  const set = (name) => (event) => { const { value } = event.target; setForm((current) => ({ ...current, [name]: value })); };
  const setValue = (name, value) => setForm((current) => ({ ...current, [name]: value }));
  const submit = (event) => {
    event.preventDefault();
    onChange(rotateBody(form, connector));
    setMode(null);
    setForm({}); // no copy of the new credentials kept in the page
  };
  return html`<${Card} title="Connector" id="connector">
    <dl class="facts">
      <dt>Smarthost</dt><dd class="mono">${connector.host}:${connector.port}</dd>
      <dt>TLS</dt><dd>${connector.tls_mode === 'starttls' ? 'STARTTLS (usually port 587)' : 'implicit TLS (usually port 465)'}</dd>
      <${SignInFacts} connector=${connector} />
      <dt>State</dt><dd><${StatusBadge} status=${connector.state} />${connector.held_since && html` since ${when(connector.held_since)}`}</dd>
    </dl>
    <p class="sub">Credentials are stored in AWS Secrets Manager and never shown again. New ones are tested with a
      real sign-in first${connector.auth_kind === 'oauth2' ? ' (a new access token, then SMTP AUTH)' : ''}; the
      current ones stay in use until the new ones pass.</p>
    ${admin && !mode && html`<div class="actions">
      <button type="button" disabled=${busy} onClick=${() => setMode('credentials')}>Rotate credentials</button>
      <button type="button" disabled=${busy} onClick=${() => setMode('connection')}>Change host, port or TLS</button>
    </div>`}
    ${mode && html`<form class="inline-form" onSubmit=${submit}>
      ${mode === 'credentials' && html`<fieldset><legend>New credentials</legend>
        <${CredentialFields} authKind=${connector.auth_kind} form=${form} set=${set} setValue=${setValue}
          rotating=${true} defaultUsername=${address.email} grants=${rotateGrants(connector)} current=${connector} />
      </fieldset>`}
      ${mode === 'connection' && html`<fieldset><legend>Connection</legend>
        <${Field} label="Host"><input name="host" placeholder=${connector.host} value=${form.host || ''} onInput=${set('host')} /><//>
        <${Field} label="Port"><input name="port" type="number" min="1" max="65535" placeholder=${String(connector.port)}
          value=${form.port || ''} onInput=${set('port')} /><//>
        <${Field} label="TLS mode"><select name="tls_mode" value=${form.tls_mode || ''} onChange=${set('tls_mode')}>
          <option value="">keep (${connector.tls_mode})</option>
          <option value="starttls">STARTTLS (587)</option>
          <option value="implicit">implicit TLS (465)</option></select><//>
        <${CaBundleField} onLoad=${(pem) => setForm((current) => ({ ...current, ca_bundle_pem: pem }))} />
      </fieldset>`}
      <div class="actions">
        <button type="submit" class="primary">Test and save</button>
        <button type="button" onClick=${() => { setMode(null); setForm({}); }}>Cancel</button>
      </div>
    </form>`}
    ${job && html`<${Progress} job=${job} /><${JobOutcome} job=${job} />`}
  <//>`;
}

function ActionsCard({ address, act, setMessage }) {
  const [confirming, setConfirming] = useState(false);
  const connector = address.connector;
  const canBeDefault = isVerified(address) && (!connector || connector.state === 'active');
  return html`<${Card} title="Actions" id="actions">
    <div class="actions wrap">
      ${!address.is_default && html`<button type="button" onClick=${() => act('PUT', '', { default: true },
        () => setMessage(`${address.email} is now the default address.`))}>Make default</button>`}
      ${connector && connector.state !== 'disabled' && html`<button type="button" onClick=${() => act('POST',
        '/disable', {}, () => setMessage('The connector is off: notifications now go out through Relaydesk.'))}>Disable connector</button>`}
      ${connector && connector.state === 'disabled' && html`<button type="button" onClick=${() => act('POST',
        '/enable', {}, () => setMessage('The connector is on again; verify the address to send through it.'))}>Enable connector</button>`}
      ${!address.is_default && !confirming && html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Delete address</button>`}
    </div>
    ${!address.is_default && !canBeDefault && html`<p class="sub">Only an address that is verified and whose connector
      works (not held, not disabled) can become the default, so password-reset and sign-in mail keep arriving.</p>`}
    ${address.is_default && html`<p class="sub">The default address cannot be deleted: make another verified address the
      default first.</p>`}
    ${confirming && html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-delete">
      <p id="confirm-delete"><strong>Delete ${address.email}?</strong> Mail to it stops creating tickets${connector
        ? ' and its credentials are scheduled for deletion (recoverable for 7 days)' : ''}.</p>
      <div class="actions">
        <button type="button" class="danger" onClick=${() => act('DELETE', '', undefined, () => {
          window.location.hash = '#/addresses';
        })}>Delete it</button>
        <button type="button" onClick=${() => setConfirming(false)}>Keep it</button>
      </div>
    </div>`}
  <//>`;
}
