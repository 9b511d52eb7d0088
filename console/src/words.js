// What to do, in the console's own terms, for the refusals whose API "action" names a CLI command. The API's
// message (what happened) is always shown as it is; only the advice is rephrased for someone in the browser.
const ACTIONS = {
  default_requires_verification: 'Verify the address first (Verify again, on its page): only an address whose forwarding and outbound are both verified can be the default, or you could lose password-reset and sign-in mail.',
  default_required: 'Make another verified address the default first: an account always has one.',
  ccs_and_followers_required: 'Turn CCs and followers on in Settings, then try again.',
  system_address: 'Use an address of your own domain, for example support@yourcompany.com.',
  address_in_use: 'If the address is yours (for example in your sandbox account), delete it there first; otherwise ask who runs that mailbox which help desk it forwards to.',
  forwarding_cannot_switch: 'Delete the forwarding address first, then connect it again with its credentials.',
  forwarding_not_verified: 'Verify forwarding first: the outbound test mail comes back through it.',
  connector_disabled: 'Enable the connector first.',
  not_a_connector: 'Only addresses connected to their own mail server have a connector.',
  dkim_domain_not_verified: 'Connect an address of that domain and verify it first.',
  dkim_not_published: 'Publish the records shown below in your DNS, wait a few minutes, then check again (or sign anyway if you just published them).',
  console_only: 'This is done in the admin console: reload the page and sign in again.',
  forbidden: 'Your role cannot do this. Ask an admin of your account.',
  ticket_not_suspended: 'Reload the list: the ticket is no longer suspended.',
  empty_comment: 'Write something first.',
  assignee_not_agent: 'Pick an agent or admin of your account (their sign-in address).',
  ticket_suspended: 'Recover the ticket in the delivery log (Suspended tickets) first.',
  attachment_type: 'Attach PDFs, images, text, office documents or a ZIP archive.',
  upload_refused: 'Check the file (at most 20 MB), then send again.',
};

export function wordsFor(code) {
  return ACTIONS[code] || '';
}

export const STATUS_WORDS = {
  unverified: 'not verified',
  pending: 'pending',
  verified: 'verified',
  failed: 'failed',
  active: 'active',
  disabled: 'disabled',
  auth_failed: 'held: credentials refused',
  tls_failed: 'held: no secure connection',
  held: 'held until the fix',
  queued: 'queued',
  delivered: 'delivered',
  deferred: 'deferred (will retry)',
  waiting: 'waiting for its turn (sending limit)',
  bounced: 'bounced',
  new: 'new',
  open: 'open',
  solved: 'solved',
  suspended: 'suspended',
};

// The explanations are the CLI's own (relaydesk/addresses/explain.py and the domain's errors): where they name a
// command or a flag, the console names its own button or field instead; the rest is kept word for word.
const CONSOLE_NAMES = [
  [/`relaydesk addresses rotate[^`]*`/g, 'Rotate credentials (on the address’s page)'],
  [/`relaydesk addresses verify[^`]*`/g, 'Verify again (on the address’s page)'],
  [/`relaydesk addresses connect[^`]*`/g, 'the Connect wizard'],
  [/`relaydesk addresses enable[^`]*`/g, 'Enable connector (on the address’s page)'],
  [/`relaydesk addresses delete[^`]*`/g, 'Delete address (on the address’s page)'],
  [/`relaydesk addresses set-default[^`]*`/g, 'Make default (on the address’s page)'],
  [/`relaydesk addresses list[^`]*`/g, 'the Addresses page'],
  [/`relaydesk accounts settings[^`]*`/g, 'Settings'],
  [/`relaydesk dkim enable[^`]*`/g, 'Start signing (on the DKIM page)'],
  [/`relaydesk dns check[^`]*`/g, 'Check DNS (on the DKIM page)'],
  [/--ca-bundle FILE/g, 'the CA certificate field'],
  [/--tls implicit/g, 'TLS mode implicit'],
  [/--tls starttls/g, 'TLS mode STARTTLS'],
  [/--auth password/g, 'a password sign-in'],
  [/--auth oauth2/g, 'Microsoft 365 (OAuth 2.0 app)'],
  [/--skip-dns-check/g, 'Sign anyway'],
  [/--client-secret-stdin/g, 'the client secret field'],
  [/--client-id/g, 'the Application (client) ID'],
  [/--tenant-id/g, 'the Directory (tenant) ID'],
  [/--password-stdin/g, 'the password field'],
  [/ \(--[a-z-]+ ([\d,]+) or less\)/g, ' ($1 or less)'],
];

export function inConsoleTerms(text) {
  if (!text) return text;
  return CONSOLE_NAMES.reduce((result, [pattern, name]) => result.replace(pattern, name), String(text));
}
