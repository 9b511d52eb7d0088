// The connect wizard: 1. the provider, 2. host, port, TLS and the credentials (or the OAuth app's values),
// 3. the live check, step by step as each one finishes, with the fix for a failed one, 4. the forward to set up on
// the mail server, then the verification, updating without a reload.
import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import {
  Card, CheckSteps, CopyButton, ErrorBox, Field, JobOutcome, Notice, PageTitle, Progress, Spinner, StatusBadge,
  useApi, useJob,
} from '../components.js';
import { html } from '../html.js';

const STEPS = ['Provider', 'Connection', 'Live check', 'Forward and verify'];

export function CaBundleField({ onLoad }) {
  const [name, setName] = useState('');
  const [problem, setProblem] = useState('');
  const read = (event) => {
    const file = event.target.files && event.target.files[0];
    if (!file) return;
    if (file.size > 64 * 1024) {
      setProblem('That file is larger than 64 KB: choose the CA certificate (PEM) only.');
      return;
    }
    file.text().then((text) => {
      if (!text.includes('-----BEGIN CERTIFICATE-----')) {
        setProblem('That file holds no PEM certificate (-----BEGIN CERTIFICATE-----).');
        return;
      }
      setProblem('');
      setName(file.name);
      onLoad(text);
    });
  };
  return html`<${Field} label="CA certificate of a private mail server (optional)"
    hint="Only for a server whose certificate is issued by your own certificate authority: upload that CA's certificate (PEM). Certificates are always verified.">
    <input type="file" name="ca_bundle" accept=".pem,.crt,.cer,text/plain" onChange=${read} /><//>
    ${name && html`<p class="sub">Using ${name}.</p>`}
    ${problem && html`<p class="field-error" role="alert">${problem}</p>`}`;
}

// A sign-in file (a service account's JSON key, a certificate's PEM with its key) read in the browser and sent once
// with the form; checked here for its shape only, fully by the API. Its contents are never shown.
function SignInFileField({ label, hint, accept, looksRight, onLoad }) {
  const [name, setName] = useState('');
  const [problem, setProblem] = useState('');
  const read = (event) => {
    const file = event.target.files && event.target.files[0];
    if (!file) return;
    if (file.size > 64 * 1024) {
      setProblem('That file is larger than 64 KB: choose the key file itself.');
      return;
    }
    file.text().then((text) => {
      const wrong = looksRight(text);
      setProblem(wrong || '');
      setName(wrong ? '' : file.name);
      onLoad(wrong ? '' : text);
    });
  };
  return html`<${Field} label=${label} hint=${hint}>
    <input type="file" accept=${accept} required onChange=${read} /><//>
    ${name && html`<p class="sub">Using ${name} (sent once with the form, never shown again).</p>`}
    ${problem && html`<p class="field-error" role="alert">${problem}</p>`}`;
}

const GRANT_LABELS = {
  client_secret: 'Client secret',
  client_certificate: 'Certificate (recommended by Microsoft)',
  service_account: 'Service account key',
};

// Username and password; or an OAuth 2.0 app: an Entra ID app's tenant id, client id and client secret or
// certificate, or a Google service account's key file.
export function CredentialFields({ authKind, form, set, rotating = false, defaultUsername = '', grants = ['client_secret'],
  setValue }) {
  const keep = rotating ? ' (leave empty to keep the current one)' : '';
  if (authKind === 'oauth2') {
    const grant = form.oauth_grant || grants[0];
    const mailbox = html`<${Field} label=${`Mailbox${keep}`} hint="The mailbox the app sends as.">
      <input name="username" type="email" value=${form.username || ''} placeholder=${defaultUsername}
        onInput=${set('username')} /><//>`;
    const choice = grants.length > 1 && html`<fieldset class="kind"><legend>How the app signs in</legend>
      ${grants.map((g) => html`<label><input type="radio" name="oauth_grant" value=${g} checked=${grant === g}
        onChange=${set('oauth_grant')} /> ${GRANT_LABELS[g] || g}</label>`)}</fieldset>`;
    if (grant === 'service_account') {
      return html`
        <${SignInFileField} label="Service account key file (JSON)" accept=".json,application/json"
          hint="Google Cloud console > IAM & Admin > Service accounts > the account > Keys > Add key > JSON. Stored in AWS Secrets Manager, never shown again."
          looksRight=${(text) => (/"type"\s*:\s*"service_account"/.test(text) ? '' : 'That file is not a service account key (its "type" is not "service_account").')}
          onLoad=${(text) => setValue('service_account_key', text)} />
        <${Field} label="Mailbox" hint="The Google Workspace mailbox the service account signs in as (domain-wide delegation).">
          <input name="username" type="email" value=${form.username || ''} placeholder=${defaultUsername}
            onInput=${set('username')} /><//>`;
    }
    return html`
      ${choice}
      <${Field} label=${`Directory (tenant) ID${keep}`} hint="Entra ID > App registrations > your app > Overview.">
        <input name="oauth_tenant_id" required=${!rotating} value=${form.oauth_tenant_id || ''} onInput=${set('oauth_tenant_id')} /><//>
      <${Field} label=${`Application (client) ID${keep}`}>
        <input name="oauth_client_id" required=${!rotating} value=${form.oauth_client_id || ''} onInput=${set('oauth_client_id')} /><//>
      ${grant === 'client_certificate'
        ? html`<${SignInFileField} label="Certificate and private key (PEM)" accept=".pem,.crt,.key,text/plain"
            hint="One PEM file with the certificate uploaded to the app and its unencrypted private key (cat app.crt app.key > app.pem). Stored in AWS Secrets Manager, never shown again."
            looksRight=${(text) => (text.includes('-----BEGIN CERTIFICATE-----') && /-----BEGIN (RSA )?PRIVATE KEY-----/.test(text)
              ? '' : 'That file needs both the certificate and its unencrypted private key (PEM).')}
            onLoad=${(text) => setValue('oauth_certificate_pem', text)} />`
        : html`<${Field} label="Client secret (its Value)" hint="Shown once in Entra ID when the secret is created. Stored in AWS Secrets Manager, never shown again.">
        <input name="oauth_client_secret" type="password" autocomplete="off" required
          value=${form.oauth_client_secret || ''} onInput=${set('oauth_client_secret')} /><//>`}
      ${mailbox}`;
  }
  return html`
    <${Field} label=${`Username${keep}`} hint="Usually the mailbox's full address.">
      <input name="username" autocomplete="off" value=${form.username || ''} placeholder=${defaultUsername}
        onInput=${set('username')} /><//>
    <${Field} label=${rotating ? 'New password' : 'Password'} hint="Stored in AWS Secrets Manager, never shown again.">
      <input name="password" type="password" autocomplete="new-password" required
        value=${form.password || ''} onInput=${set('password')} /><//>`;
}

// What the API takes for the chosen OAuth 2.0 sign-in: only that sign-in's fields are sent.
function oauthBody(form) {
  const grant = form.oauth_grant || 'client_secret';
  if (grant === 'service_account') return { oauth_grant: grant, service_account_key: form.service_account_key || null };
  const app = { oauth_grant: grant, oauth_tenant_id: form.oauth_tenant_id, oauth_client_id: form.oauth_client_id };
  return grant === 'client_certificate'
    ? { ...app, oauth_certificate_pem: form.oauth_certificate_pem || null }
    : { ...app, oauth_client_secret: form.oauth_client_secret };
}

export function WizardPage({ user, account }) {
  const providers = useApi('/providers');
  const [step, setStep] = useState(0);
  const [provider, setProvider] = useState(null);
  const [form, setForm] = useState({ email: '', name: '' });
  const [error, setError] = useState(null);
  const [jobId, setJobId] = useState(null);
  const [connected, setConnected] = useState(null);
  const { job } = useJob(jobId, (finished) => {
    if (finished.status === 'succeeded') {
      setConnected(finished.email);
      setForm((current) => ({ ...current, password: '', oauth_client_secret: '', oauth_certificate_pem: '',
        service_account_key: '' })); // no copy kept in the page
    }
  });
  // Functional updates: an event handler may run after a newer change (a file read finishing late).
  const set = (name) => (event) => { const { value } = event.target; setForm((current) => ({ ...current, [name]: value })); };
  const setValue = (name, value) => setForm((current) => ({ ...current, [name]: value }));

  if (user.role !== 'admin') {
    return html`<div class="page"><${PageTitle}>Connect an address<//>
      <${Notice}>Only an admin of your account can connect an address.<//></div>`;
  }
  const choose = (chosen) => {
    setProvider(chosen);
    setForm((current) => ({ ...current, host: chosen.host || '', port: String(chosen.port),
      tls_mode: chosen.tls_mode, auth_kind: chosen.auth_kinds[0], oauth_grant: (chosen.grants || [])[0] || 'client_secret' }));
  };
  const check = async (event) => {
    event.preventDefault();
    setError(null);
    const body = {
      email: form.email, name: form.name, preset: provider.preset, host: form.host || null,
      port: form.port ? Number(form.port) : null, tls_mode: form.tls_mode || null, auth_kind: form.auth_kind,
      username: form.username || null, ca_bundle_pem: form.ca_bundle_pem || null,
      ...(form.auth_kind === 'oauth2' ? oauthBody(form) : { password: form.password }),
    };
    try {
      const started = await api('POST', '/connections', body);
      setJobId(started.job_id);
      setStep(2);
    } catch (failure) {
      setError(failure);
    }
  };

  return html`<div class="page">
    <${PageTitle}>Connect an address<//>
    <ol class="wizard-steps" aria-label="Steps">
      ${STEPS.map((label, index) => html`<li class=${index === step ? 'current' : index < step ? 'done' : ''}
        aria-current=${index === step ? 'step' : undefined}>${index + 1}. ${label}</li>`)}
    </ol>
    ${!account.settings.ccs_and_followers_enabled && html`<${Notice} tone="warn">The connector needs CCs and
      followers: <a href="#/settings">turn them on in Settings</a> first.<//>`}
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />

    ${step === 0 && html`<${Card} title="1. Which mail service sends for this address?" id="provider">
      ${providers.error && html`<${ErrorBox} error=${providers.error} />`}
      ${!providers.data && !providers.error && html`<${Spinner} label="Loading the providers…" />`}
      ${providers.data && html`<fieldset class="choices"><legend class="visually-hidden">Provider</legend>
        ${providers.data.providers.map((p) => html`<label class=${`choice ${provider && provider.key === p.key ? 'chosen' : ''}`}>
          <input type="radio" name="provider" value=${p.key} checked=${provider && provider.key === p.key}
            onChange=${() => choose(p)} />
          <span class="choice-title">${p.label}</span>
          <span class="sub">${p.host ? `${p.host}:${p.port}` : 'your own server'}</span>
        </label>`)}
      </fieldset>`}
      ${provider && html`<p class="sub">${provider.sign_in}</p>`}
      <div class="actions"><button type="button" class="primary" disabled=${!provider} onClick=${() => setStep(1)}>Next</button></div>
    <//>`}

    ${step === 1 && provider && html`<form onSubmit=${check}><${Card} title=${`2. ${provider.label}: connection and credentials`} id="connection">
      <${Field} label="Support address" hint=${`Your own address, not the system address ${account.system_address}.`}>
        <input name="email" type="email" required value=${form.email} onInput=${set('email')} /><//>
      <${Field} label="Display name (optional)" hint="The From name your customers see.">
        <input name="name" value=${form.name} onInput=${set('name')} placeholder=${account.name} /><//>
      <div class="row">
        <${Field} label="Host"><input name="host" required=${!provider.host} value=${form.host} onInput=${set('host')}
          placeholder=${provider.host || 'smtp.example.com'} /><//>
        <${Field} label="Port"><input name="port" type="number" min="1" max="65535" value=${form.port} onInput=${set('port')} /><//>
        <${Field} label="TLS mode"><select name="tls_mode" value=${form.tls_mode} onChange=${set('tls_mode')}>
          <option value="starttls">STARTTLS (587)</option><option value="implicit">implicit TLS (465)</option></select><//>
      </div>
      <${CredentialFields} authKind=${form.auth_kind} form=${form} set=${set} setValue=${setValue}
        defaultUsername=${form.email} grants=${provider.grants && provider.grants.length ? provider.grants : ['client_secret']} />
      <${CaBundleField} onLoad=${(pem) => setForm((current) => ({ ...current, ca_bundle_pem: pem }))} />
      <p class="sub">Relaydesk always encrypts (STARTTLS or TLS), checks the certificate, and signs in only over
        TLS. Nothing is saved if the check fails.</p>
      <div class="actions">
        <button type="button" onClick=${() => setStep(0)}>Back</button>
        <button type="submit" class="primary">Check and connect</button>
      </div>
    <//></form>`}

    ${step === 2 && html`<${Card} title="3. Live check" id="check">
      ${!job && html`<${Spinner} label="Starting the check…" />`}
      ${job && html`<p>Checking ${job.email} against ${form.host || (provider && provider.host)}, step by step:</p>
        <${CheckSteps} job=${job} /><${JobOutcome} job=${job} />`}
      <div class="actions">
        ${job && job.status === 'failed' && html`<button type="button" onClick=${() => { setJobId(null); setStep(1); }}>Back to the form</button>`}
        ${connected && html`<button type="button" class="primary" onClick=${() => setStep(3)}>Next: forward and verify</button>`}
      </div>
    <//>`}

    ${step === 3 && connected && html`<${ForwardAndVerify} email=${connected} provider=${provider} account=${account} />`}
  </div>`;
}

function ForwardAndVerify({ email, provider, account }) {
  const [jobId, setJobId] = useState(null);
  const [error, setError] = useState(null);
  const details = useApi(`/support_addresses/${enc(email)}/details`, { every: 2000 });
  const { job } = useJob(jobId, () => details.reload());
  const verify = async () => {
    setError(null);
    try {
      setJobId((await api('POST', `/support_addresses/${enc(email)}/verification`, {})).job_id);
    } catch (failure) {
      setError(failure);
    }
  };
  useEffect(() => { document.getElementById('forward-title') && document.getElementById('forward-title').focus(); }, []);
  const address = details.data && details.data.address;
  const steps = provider.forwarding.map((text) => text.replaceAll('{support}', email));
  return html`<${Card} title="4. Forward to Relaydesk, then verify" id="forward">
    <p>Set up a <strong>server-level</strong> forward of ${email} to${' '}
      <strong class="mono">${account.system_address}</strong>${' '}<${CopyButton} text=${account.system_address} /></p>
    <ol class="guide">${steps.map((text) => html`<li>${text}</li>`)}</ol>
    <p>Then verify: Relaydesk sends a test mail to ${email} and waits for your server to forward it back, then sends
      one through your server and waits for it to come back too.</p>
    <${ErrorBox} error=${error} />
    ${address && html`<dl class="facts">
      <dt>Forwarding</dt><dd><${StatusBadge} status=${address.forwarding.status} /></dd>
      <dt>Outbound</dt><dd><${StatusBadge} status=${address.outbound.status} /></dd>
    </dl>`}
    <${Progress} job=${job} /><${JobOutcome} job=${job} />
    <div class="actions">
      <button type="button" class="primary" disabled=${job && job.status === 'running'} onClick=${verify}>
        ${job ? 'Verify again' : 'Verify now'}</button>
      <a class="button" href=${`#/addresses/${enc(email)}`}>Open the address</a>
    </div>
  <//>`;
}
