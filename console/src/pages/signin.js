// Sign in with the email and password of a user of your account (an invitation's temporary password first asks
// for a new one).
import { useState } from 'preact/hooks';
import { signIn } from '../auth.js';
import { Field, Notice, PageTitle, Spinner } from '../components.js';
import { html } from '../html.js';

export function SignInPage({ onSignedIn, environment }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [pending, setPending] = useState(null); // complete(newPassword) of a first sign-in
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const finish = (result) => {
    if (result.newPasswordRequired) {
      setPending(() => result.newPasswordRequired);
      setBusy(false);
      return;
    }
    if (!result.user.accountId) {
      setError('This user belongs to no Relaydesk account. Ask your operator.');
      setBusy(false);
      return;
    }
    onSignedIn(result.user);
  };
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      finish(pending ? await pending(newPassword) : await signIn(email, password));
    } catch (failure) {
      setError(failure.message);
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="card signin-card" onSubmit=${submit} aria-describedby=${error ? 'signin-error' : undefined}>
      <${PageTitle}>Relaydesk admin console<//>
      <p>Sign in with your Relaydesk user.${environment === 'local' ? ' (Local stack: `make up` printed a sign-in.)' : ''}</p>
      ${!pending && html`
        <${Field} label="Email address"><input type="email" name="email" autocomplete="username" required
          value=${email} onInput=${(e) => setEmail(e.target.value)} /><//>
        <${Field} label="Password"><input type="password" name="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} /><//>`}
      ${pending && html`
        <${Notice}>This is your first sign-in: choose your own password.<//>
        <${Field} label="New password" hint="At least 12 characters, with upper- and lower-case letters and digits.">
          <input type="password" name="new-password" autocomplete="new-password" required minlength="12"
            value=${newPassword} onInput=${(e) => setNewPassword(e.target.value)} /><//>`}
      ${error && html`<div class="error-box" role="alert" id="signin-error"><p class="error-message"><strong>${error}</strong></p></div>`}
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${pending ? 'Set password and sign in' : 'Sign in'}</button>
        ${busy && html`<${Spinner} label="Signing in…" />`}
      </div>
    </form>
  </main>`;
}
