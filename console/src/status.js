// What an address's state means at a glance: its badges (each with words, never colour alone) and a one-line reason.
import { Badge } from './components.js';
import { html } from './html.js';

export function isVerified(address) {
  return address.forwarding.status === 'verified' && address.outbound.status === 'verified';
}

// held | disabled | pending | verified | failed, for a connector; forwarding addresses by their verification.
export function addressState(address) {
  const connector = address.connector;
  if (address.kind === 'system') return 'system';
  if (connector && connector.state === 'auth_failed') return 'held';
  if (connector && connector.state === 'disabled') return 'disabled';
  if (address.forwarding.status === 'failed' || address.outbound.status === 'failed') return 'failed';
  if (isVerified(address) && (!connector || connector.state === 'active')) return 'verified';
  return 'pending';
}

export function firstSentence(text) {
  if (!text) return '';
  const cut = text.replace(/^auth_failed:\s*/, '').split(/(?<=[.;])\s/)[0];
  return cut.length > 160 ? `${cut.slice(0, 157)}…` : cut;
}

export function AddressBadges({ address }) {
  const state = addressState(address);
  const badges = [];
  if (state === 'system') badges.push(html`<${Badge} tone="neutral">system address<//>`);
  if (state === 'verified') badges.push(html`<${Badge} tone="ok">verified<//>`);
  if (state === 'pending') badges.push(html`<${Badge} tone="wait">pending verification<//>`);
  if (state === 'failed') badges.push(html`<${Badge} tone="bad">verification failed<//>`);
  if (state === 'held') badges.push(html`<${Badge} tone="bad" title=${address.last_error || ''}>held: credentials refused<//>`);
  if (state === 'disabled') badges.push(html`<${Badge} tone="muted">disabled: sent by Relaydesk<//>`);
  if (address.is_default) badges.push(html`<${Badge} tone="ok">default<//>`);
  if (address.dkim && address.dkim.enabled) badges.push(html`<${Badge} tone="neutral">DKIM<//>`);
  return html`<span class="badges">${badges}</span>`;
}

export function stateReason(address) {
  const state = addressState(address);
  if (state === 'held') return `Held: ${firstSentence(address.last_error)} Notifications wait until the credentials are fixed.`;
  if (state === 'disabled') return 'The connector is off: notifications go out through Relaydesk’s own servers.';
  if (state === 'failed') return firstSentence(address.forwarding.error || address.outbound.error || address.last_error);
  if (state === 'pending' && address.connector) {
    return address.forwarding.status === 'verified'
      ? 'Forwarding verified; outbound not verified yet.'
      : 'Not verified yet: set up the forward, then verify.';
  }
  return '';
}
