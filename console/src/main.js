// The Relaydesk admin console: loads this stack's config.json, signs the user in, then shows the page the URL's
// hash names (#/tickets, #/tickets/<id>, #/addresses, #/addresses/<email>, #/connect, #/dkim/<domain>, #/log,
// #/settings). Agents see the tickets and the delivery log only: the admin pages are not in their navigation, and
// their URLs show an "admins only" page (the API refuses those calls anyway).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, configureApi } from './api.js';
import { configure, currentUser, signOut } from './auth.js';
import { Badge, ErrorBox, PageTitle, Spinner } from './components.js';
import { html } from './html.js';
import { AddressPage } from './pages/address.js';
import { AddressesPage } from './pages/addresses.js';
import { DkimPage } from './pages/dkim.js';
import { LogPage } from './pages/log.js';
import { SettingsPage } from './pages/settings.js';
import { SignInPage } from './pages/signin.js';
import { TicketPage } from './pages/ticket.js';
import { TicketsPage } from './pages/tickets.js';
import { WizardPage } from './pages/wizard.js';

// [page, label, admins only]
const NAV = [
  ['tickets', 'Tickets', false],
  ['addresses', 'Addresses', true],
  ['connect', 'Connect', true],
  ['dkim', 'DKIM', true],
  ['log', 'Delivery log', false],
  ['settings', 'Settings', true],
];
const ADMIN_PAGES = new Set(NAV.filter(([, , admins]) => admins).map(([key]) => key));

function home(user) {
  return user && user.role === 'admin' ? 'addresses' : 'tickets';
}

function parseHash(user) {
  const [path, query = ''] = window.location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts: parts.length ? parts : [home(user)], query: new URLSearchParams(query) };
}

function useRoute(user) {
  const [route, setRoute] = useState(() => parseHash(user));
  useEffect(() => {
    const changed = () => setRoute(parseHash(user));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function Page({ route, user, account, reloadAccount }) {
  const [page, ...rest] = route.parts;
  const props = { user, account, reloadAccount, query: route.query };
  if (ADMIN_PAGES.has(page) && user.role !== 'admin') return html`<${AdminsOnly} user=${user} />`;
  if (page === 'tickets' && rest.length) return html`<${TicketPage} ...${props} ticketId=${rest[0]} />`;
  if (page === 'tickets') return html`<${TicketsPage} ...${props} />`;
  if (page === 'addresses' && rest.length) return html`<${AddressPage} ...${props} email=${rest[0]} />`;
  if (page === 'addresses') return html`<${AddressesPage} ...${props} />`;
  if (page === 'connect') return html`<${WizardPage} ...${props} />`;
  if (page === 'dkim') return html`<${DkimPage} ...${props} domain=${rest[0] || ''} />`;
  if (page === 'log') return html`<${LogPage} ...${props} />`;
  if (page === 'settings') return html`<${SettingsPage} ...${props} />`;
  return html`<div><h1>Page not found</h1><p>There is no page at this address. <a href=${`#/${home(user)}`}>Go to the start page.</a></p></div>`;
}

function AdminsOnly({ user }) {
  return html`<div class="page">
    <${PageTitle}>Admins only<//>
    <div class="notice notice-warn" role="alert">
      <p><strong>This page is for your account's admins.</strong> You are signed in as ${user.email}
        ${user.role ? ` with the ${user.role} role` : ' without a role'}: support addresses, DKIM and settings are
        changed by an admin.</p>
      <p>Ask an admin of your account if something there needs a change.
        ${user.role && html` <a href="#/tickets">Go to the tickets.</a>`}</p>
    </div>
  </div>`;
}

function Shell({ user, onSignOut }) {
  const route = useRoute(user);
  const nav = NAV.filter(([, , admins]) => !admins || user.role === 'admin');
  const [account, setAccount] = useState(null);
  const [error, setError] = useState(null);
  const loadAccount = async () => {
    try {
      setAccount(await api('GET', ''));
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  };
  useEffect(() => { loadAccount(); }, []);
  const skip = () => document.getElementById('main').focus();
  return html`<div class="shell">
    <button type="button" class="skip" onClick=${skip}>Skip to content</button>
    <header class="topbar">
      <div class="brand">
        <a href=${`#/${home(user)}`} class="brand-name">Relaydesk</a>
        ${account && html`<span class="account">${account.name}
          <${Badge} tone=${account.kind === 'production' ? 'ok' : 'wait'}>${account.kind}<//></span>`}
      </div>
      <nav aria-label="Main">
        <ul>${nav.map(([key, label]) => html`<li>
          <a href=${`#/${key}`} aria-current=${route.parts[0] === key ? 'page' : undefined}>${label}</a></li>`)}
        </ul>
      </nav>
      <div class="who">
        <span class="user">${user.email}${user.role ? ` (${user.role})` : ''}</span>
        <button type="button" class="small" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">
      <${ErrorBox} error=${error} />
      ${!account && !error && html`<${Spinner} label="Loading your account…" />`}
      ${account && html`<${Page} route=${route} user=${user} account=${account} reloadAccount=${loadAccount} />`}
    </main>
  </div>`;
}

function App({ config }) {
  const [user, setUser] = useState(undefined);
  useEffect(() => { currentUser().then(setUser); }, []);
  if (user === undefined) return html`<${Spinner} label="Checking your sign-in…" />`;
  if (!user) {
    return html`<${SignInPage} environment=${config.environment} onSignedIn=${(signedIn) => {
      configureApi(config.apiUrl, signedIn.accountId);
      setUser(signedIn);
    }} />`;
  }
  configureApi(config.apiUrl, user.accountId);
  return html`<${Shell} user=${user} onSignOut=${() => { signOut(); setUser(null); }} />`;
}

async function start() {
  const root = document.getElementById('app');
  let config;
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    config = await response.json();
  } catch (error) {
    render(html`<div class="error-box" role="alert"><p><strong>The console's configuration (config.json) could
      not be loaded.</strong></p><p>Reload the page; if it keeps failing, the console was not deployed with its
      stack (ConsoleSite).</p></div>`, root);
    return;
  }
  configure(config);
  root.textContent = '';
  render(html`<${App} config=${config} />`, root);
}

start();
