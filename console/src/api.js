// The tenant API, as the signed-in user: every call carries the ID token, every failure becomes an ApiError whose
// message is words (the API's own message and what to do), never raw JSON.
import { idToken, SignedOut } from './auth.js';
import { wordsFor } from './words.js';

let base = '';
let accountId = '';

export function configureApi(apiUrl, account) {
  base = apiUrl.replace(/\/+$/, '');
  accountId = account;
}

export class ApiError extends Error {
  constructor(status, code, message, action, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.action = action;
    this.fields = fields || [];
  }
}

export const enc = encodeURIComponent;

// `headers` adds request headers (an Idempotency-Key: the same one only when the same request is sent again).
export async function api(method, path, body, headers = {}) {
  let token;
  try {
    token = await idToken();
  } catch (error) {
    throw new ApiError(401, 'signed_out', new SignedOut().message, 'Sign in again.');
  }
  let response;
  try {
    response = await fetch(`${base}/accounts/${enc(accountId)}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', 'Relaydesk could not be reached.', 'Check your connection, then try again.');
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (response.ok) return data;
  throw errorOf(response.status, data);
}

function errorOf(status, data) {
  const code = (data && data.code) || (status === 401 ? 'unauthorized' : status >= 500 ? 'internal_error' : 'error');
  const known = wordsFor(code);
  if (status === 401) {
    return new ApiError(status, code, 'Your sign-in has ended or is not valid.', 'Sign in again.');
  }
  if (data && typeof data.message === 'string' && data.code) {
    return new ApiError(status, code, sentence(data.message), known || data.action || '', data.errors);
  }
  if (status === 404) return new ApiError(status, code, 'That was not found in your account.', 'Reload the page.');
  if (status === 429) return new ApiError(status, code, 'Too many requests right now.', 'Wait a moment, then try again.');
  if (status >= 500) {
    return new ApiError(status, code, 'Relaydesk failed to answer (a problem on our side).', 'Try again; if it keeps failing, tell your operator the time it happened.');
  }
  return new ApiError(status, code, `The request was refused (HTTP ${status}).`, 'Reload the page and try again.');
}

function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return 'The request was refused.';
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

// One file straight to S3 through the presigned POST the API hands out for this ticket: every field of the form,
// then the file last (S3 reads the policy before the file). S3 itself refuses another key, type or a bigger file.
export async function uploadFile(ticketId, file) {
  const type = file.type || 'application/octet-stream';
  const form = await api('POST', `/tickets/${enc(ticketId)}/uploads`, {
    filename: file.name, content_type: type, size: file.size,
  });
  const body = new FormData();
  Object.entries(form.fields).forEach(([name, value]) => body.append(name, value));
  body.append('file', file);
  let response;
  try {
    response = await fetch(form.url, { method: 'POST', body, credentials: 'omit', cache: 'no-store' });
  } catch (error) {
    throw new ApiError(0, 'upload_network', `${file.name} could not be uploaded: the file store could not be reached.`,
      'Check your connection, then send again.');
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    const code = (/<Code>([^<]{1,60})<\/Code>/.exec(text) || [])[1] || `HTTP ${response.status}`;
    throw new ApiError(response.status, 'upload_refused', `${file.name} was refused by the file store (${code}).`,
      'Check the file (at most 20 MB; PDF, images, text, office documents or ZIP), then send again.');
  }
  return form.key;
}

// A new Idempotency-Key: a retry of the same send reuses it, so the reply is written and mailed once.
export function newRequestId() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
