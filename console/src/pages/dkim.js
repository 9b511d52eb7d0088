// DKIM for one of your domains: turn it on (keys are made, the records to publish are shown with copy buttons),
// check the DNS (SPF, the DKIM records, DMARC: each finding with its fix), then sign, or stop signing.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Badge, Card, CopyButton, ErrorBox, Notice, PageTitle, Spinner, useApi, when } from '../components.js';
import { html } from '../html.js';

const FINDING_TONES = { ok: 'ok', info: 'neutral', warn: 'warn', fail: 'bad' };

export function DkimPage({ domain, user, account }) {
  const addresses = useApi('/support_addresses');
  const mailDomain = account.system_address.split('@')[1];
  const domains = addresses.data ? [...new Set(addresses.data.support_addresses
    .filter((a) => a.kind !== 'system' && !a.email.endsWith(mailDomain)).map((a) => a.email.split('@')[1]))] : [];
  return html`<div class="page">
    <${PageTitle}>DKIM${domain ? ` for ${domain}` : ''}<//>
    <p class="lead">Relaydesk signs the notifications of your domain with your DKIM key (d=your domain), so
      receivers can check they are yours. You publish the public keys in your DNS.</p>
    ${addresses.error && html`<${ErrorBox} error=${addresses.error} />`}
    ${addresses.data && domains.length === 0 && html`<p>No domain yet: <a href="#/connect">connect a support address</a> first.</p>`}
    ${addresses.data && domains.length > 0 && html`<nav class="tabs" aria-label="Your domains">
      ${domains.map((d) => html`<a href=${`#/dkim/${enc(d)}`} aria-current=${d === domain ? 'page' : undefined}>${d}</a>`)}
    </nav>`}
    ${domain && html`<${DomainDkim} key=${domain} domain=${domain} admin=${user.role === 'admin'} />`}
    ${!domain && domains.length > 0 && html`<p>Choose a domain above.</p>`}
  </div>`;
}

function DomainDkim({ domain, admin }) {
  const state = useApi(`/dkim/${enc(domain)}`);
  const [busy, setBusy] = useState('');
  const [error, setError] = useState(null);
  const [check, setCheck] = useState(null);
  const [message, setMessage] = useState('');
  const run = async (label, work) => {
    setBusy(label);
    setError(null);
    setMessage('');
    try {
      await work();
    } catch (failure) {
      setError(failure);
    }
    setBusy('');
  };
  const turnOn = () => run('Creating the keys…', async () => {
    await api('POST', `/dkim/${enc(domain)}`, {});
    await state.reload();
  });
  const checkDns = () => run('Checking the DNS (SPF, DKIM, DMARC)…', async () => {
    setCheck(await api('GET', `/dkim/${enc(domain)}/check`));
  });
  const sign = (signing, skip = false) => run(signing ? 'Checking the records, then signing…' : 'Stopping…', async () => {
    await api('PUT', `/dkim/${enc(domain)}`, { signing, skip_dns_check: skip });
    await state.reload();
    setMessage(signing ? `Notifications from ${domain} are signed from now on.` : `Notifications from ${domain} are no longer signed.`);
  });
  const dkim = state.data;
  return html`<div>
    <${ErrorBox} error=${error || state.error} onDismiss=${error ? () => setError(null) : undefined} />
    ${error && error.code === 'dkim_not_published' && admin && html`<p><button type="button" onClick=${() => sign(true, true)}>
      Sign anyway (I have just published them)</button></p>`}
    ${message && html`<${Notice} tone="ok">${message}<//>`}
    ${busy && html`<${Spinner} label=${busy} />`}
    ${!dkim && !state.error && html`<${Spinner} label="Loading…" />`}
    ${dkim && !dkim.set_up && html`<${Card} title="DKIM is off" id="dkim-off"
      actions=${admin && html`<button type="button" class="primary" disabled=${!!busy} onClick=${turnOn}>Turn on DKIM</button>`}>
      <p>Turning it on makes an RSA and an Ed25519 key for ${domain} and shows the two TXT records to publish. Signing
        starts once they are published.</p>
    <//>`}
    ${dkim && dkim.set_up && html`<${Card} title="DNS records to publish" id="records"
      actions=${html`<button type="button" disabled=${!!busy} onClick=${checkDns}>Check DNS</button>
        ${admin && !dkim.signing && html`<button type="button" class="primary" disabled=${!!busy} onClick=${() => sign(true)}>Start signing</button>`}
        ${admin && dkim.signing && html`<button type="button" disabled=${!!busy} onClick=${() => sign(false)}>Stop signing</button>`}`}>
      <p>Signing: ${dkim.signing ? html`<${Badge} tone="ok">on<//>` : html`<${Badge} tone="wait">off<//>`}
        ${' '}for ${dkim.addresses.join(', ')}</p>
      <div class="records">${dkim.records.map((record) => html`<div class="record">
        <div class="record-line"><span class="label">Name</span><code>${record.name}</code>
          <${CopyButton} text=${record.name} label="Copy name" /></div>
        <div class="record-line"><span class="label">Type</span><code>${record.type}</code></div>
        <div class="record-line"><span class="label">Value</span><code class="wrap">${record.value}</code>
          <${CopyButton} text=${record.value} label="Copy value" /></div>
        ${record.strings.length > 1 && html`<p class="sub">Some DNS consoles want the value as ${record.strings.length}${' '}
          quoted strings of at most 255 characters: <code class="wrap">${record.strings.map((s) => `"${s}"`).join(' ')}</code>
          <${CopyButton} text=${record.strings.map((s) => `"${s}"`).join(' ')} label="Copy as strings" /></p>`}
      </div>`)}</div>
      <details><summary>Keys</summary><ul>${dkim.generations.map((g) => html`<li>${g.selectors.join(', ')}: ${g.state},
        signs from ${when(g.signs_from)}</li>`)}</ul></details>
    <//>`}
    ${check && html`<${Card} title=${`DNS check: ${check.result}`} id="dns-check">
      <ul class="findings" aria-live="polite">${check.findings.map((f) => html`<li class="finding">
        <${Badge} tone=${FINDING_TONES[f.status] || 'neutral'}>${f.check.toUpperCase()} ${f.status}<//>
        <span>${f.message}</span>
        ${f.fix && html`<div class="sub"><span class="label">Fix: </span>${f.fix}</div>`}
      </li>`)}</ul>
    <//>`}
  </div>`;
}
