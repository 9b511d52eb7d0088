// The account's settings (include attachments in email; CCs and followers, which the connector needs) and its users:
// who may sign in, with which role, and invitations by email.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Badge, Card, ErrorBox, Field, Notice, PageTitle, Spinner, useApi, when } from '../components.js';
import { html } from '../html.js';

export function SettingsPage({ user, account, reloadAccount }) {
  const admin = user.role === 'admin';
  const [error, setError] = useState(null);
  const [message, setMessage] = useState('');
  const [settings, setSettings] = useState(account.settings); // what the boxes show: the saved value after a refusal
  useEffect(() => setSettings(account.settings), [account]);
  const change = async (name, value) => {
    setError(null);
    setMessage('');
    setSettings({ ...settings, [name]: value });
    try {
      await api('PUT', '/settings', { [name]: value });
      await reloadAccount();
      setMessage('Saved.');
    } catch (failure) {
      setSettings(account.settings);
      setError(failure);
    }
  };
  return html`<div class="page">
    <${PageTitle}>Settings<//>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    ${message && html`<${Notice} tone="ok">${message}<//>`}
    <${Card} title="Email" id="email-settings">
      <dl class="facts">
        <dt>Account</dt><dd>${account.name} (${account.subdomain}, ${account.kind})</dd>
        <dt>System address</dt><dd class="mono">${account.system_address}</dd>
      </dl>
      <div class="toggle">
        <input type="checkbox" id="include-attachments" checked=${settings.include_attachments_in_email} disabled=${!admin}
          onChange=${(e) => change('include_attachments_in_email', e.target.checked)} />
        <label for="include-attachments">Include attachments in email</label>
        <p class="hint">Off: recipients get links instead. Microsoft rejects some mails with real attachments:
          turn it off for Microsoft 365 and Exchange Online.</p>
      </div>
      <div class="toggle">
        <input type="checkbox" id="ccs-followers" checked=${settings.ccs_and_followers_enabled} disabled=${!admin}
          onChange=${(e) => change('ccs_and_followers_enabled', e.target.checked)} />
        <label for="ccs-followers">CCs and followers</label>
        <p class="hint">Required by the connector: it cannot be turned off while an address sends through your own
          mail server.</p>
      </div>
    <//>
    ${admin && html`<${Users} />`}
  </div>`;
}

function Users() {
  const users = useApi('/users');
  const [form, setForm] = useState({ email: '', role: 'admin' });
  const [error, setError] = useState(null);
  const [message, setMessage] = useState('');
  const invite = async (event) => {
    event.preventDefault();
    setError(null);
    setMessage('');
    try {
      const invited = await api('POST', '/users', form);
      setMessage(`${invited.email} is invited: they get an email with a temporary password.`);
      setForm({ email: '', role: form.role });
      users.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<${Card} title="Users of this account" id="users">
    <${ErrorBox} error=${users.error} />
    ${!users.data && !users.error && html`<${Spinner} label="Loading the users…" />`}
    ${users.data && html`<table class="list">
      <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th></tr></thead>
      <tbody>${users.data.users.map((u) => html`<tr>
        <td data-label="Email">${u.email}</td>
        <td data-label="Role">${u.role || 'none'}</td>
        <td data-label="Status">${u.status === 'FORCE_CHANGE_PASSWORD' ? html`<${Badge} tone="wait">invited<//>`
          : u.enabled ? html`<${Badge} tone="ok">active<//>` : html`<${Badge} tone="muted">disabled<//>`}
          ${u.created_at && html`<span class="sub"> since ${when(u.created_at)}</span>`}</td>
      </tr>`)}</tbody></table>`}
    <form class="inline-form" onSubmit=${invite}>
      <h3>Invite someone</h3>
      <${ErrorBox} error=${error} />
      ${message && html`<${Notice} tone="ok">${message}<//>`}
      <div class="row">
        <${Field} label="Email address"><input type="email" required value=${form.email}
          onInput=${(e) => { const { value } = e.target; setForm((current) => ({ ...current, email: value })); }} /><//>
        <${Field} label="Role"><select value=${form.role} onChange=${(e) => { const { value } = e.target; setForm((current) => ({ ...current, role: value })); }}>
          <option value="admin">admin: addresses, credentials, DKIM, settings</option>
          <option value="agent">agent: reads the log, held and suspended mail</option></select><//>
      </div>
      <div class="actions"><button type="submit" class="primary">Invite</button></div>
    </form>
  <//>`;
}
