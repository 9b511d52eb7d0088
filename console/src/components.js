// Small building blocks shared by the pages: badges, errors in words, fields with labels, copy buttons, a job's
// live progress, and the hooks that load and poll the API.
import { cloneElement } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { STATUS_WORDS, inConsoleTerms } from './words.js';

export function Badge({ tone = 'neutral', children, title }) {
  return html`<span class=${`badge badge-${tone}`} title=${title}>${children}</span>`;
}

export function statusTone(status) {
  return { verified: 'ok', active: 'ok', delivered: 'ok', pending: 'wait', queued: 'wait', waiting: 'wait', unverified: 'wait',
    deferred: 'warn', disabled: 'muted', failed: 'bad', auth_failed: 'bad', tls_failed: 'bad',
    held: 'bad', bounced: 'bad' }[status] || 'neutral';
}

export function StatusBadge({ status, prefix }) {
  return html`<${Badge} tone=${statusTone(status)}>${prefix ? `${prefix}: ` : ''}${STATUS_WORDS[status] || status}<//>`;
}

export function Spinner({ label }) {
  return html`<span class="spinner" role="status"><span class="spinner-dot" aria-hidden="true"></span>${label}</span>`;
}

// An error in words: what happened, then what to do, then the fields the API named.
export function ErrorBox({ error, onDismiss }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert">
    <p class="error-message"><strong>${error.message}</strong></p>
    ${error.action && html`<p class="error-action">${inConsoleTerms(error.action)}</p>`}
    ${error.fields && error.fields.length > 0 && html`<ul class="error-fields">
      ${error.fields.map((f) => html`<li>${fieldName(f.field)}: ${f.message}</li>`)}
    </ul>`}
    ${onDismiss && html`<button type="button" class="link" onClick=${onDismiss}>Dismiss</button>`}
  </div>`;
}

function fieldName(field) {
  return String(field || '').replace(/^body\./, '').replace(/^query\./, '').replace(/_/g, ' ');
}

export function Notice({ children, tone = 'info' }) {
  return html`<div class=${`notice notice-${tone}`} role="status">${children}</div>`;
}

let fieldIds = 0;
export function Field({ label, hint, children, id }) {
  const [own] = useState(() => id || `field-${++fieldIds}`);
  const child = Array.isArray(children) ? children[0] : children;
  const input = child && child.props
    ? cloneElement(child, { id: own, 'aria-describedby': hint ? `${own}-hint` : undefined })
    : child;
  return html`<div class="field">
    <label for=${own}>${label}</label>
    ${input}
    ${hint && html`<p class="hint" id=${`${own}-hint`}>${hint}</p>`}
  </div>`;
}

export function CopyButton({ text, label = 'Copy' }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return html`<button type="button" class="small" onClick=${copy} aria-label=${`${label}: ${text.slice(0, 40)}`}>
    ${copied ? 'Copied' : label}</button>`;
}

export function Card({ title, children, actions, id }) {
  return html`<section class="card" aria-labelledby=${id && `${id}-title`}>
    ${title && html`<h2 id=${id && `${id}-title`}>${title}</h2>`}
    ${children}
    ${actions && html`<div class="actions">${actions}</div>`}
  </section>`;
}

// The page's heading takes the focus when the page changes, so a screen reader announces where the user is.
export function PageTitle({ children }) {
  const ref = useRef(null);
  useEffect(() => { if (ref.current) ref.current.focus(); }, []);
  return html`<h1 tabindex="-1" ref=${ref}>${children}</h1>`;
}

// GET `path` now and every `every` ms while `active`; returns {data, error, loading, reload}.
// The state is kept with the path it was read for: when the path changes (another address's page, other filters),
// the page never shows the previous path's data as the new one's, and a late answer for an old path is dropped.
export function useApi(path, { every = 0, active = true } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true, path });
  const alive = useRef(true);
  const current = useRef(path);
  current.current = path;
  const reload = useCallback(async () => {
    if (!path) return;
    try {
      const data = await api('GET', path);
      if (alive.current && current.current === path) setState({ data, error: null, loading: false, path });
    } catch (error) {
      if (alive.current && current.current === path) {
        setState((previous) => ({ data: previous.path === path ? previous.data : null, error, loading: false, path }));
      }
    }
  }, [path]);
  useEffect(() => {
    alive.current = true;
    setState((previous) => ({ ...previous, loading: true }));
    reload();
    return () => { alive.current = false; };
  }, [reload]);
  useEffect(() => {
    if (!every || !active) return undefined;
    const timer = setInterval(reload, every);
    return () => clearInterval(timer);
  }, [every, active, reload]);
  const fresh = state.path === path;
  return { data: fresh ? state.data : null, error: fresh ? state.error : null, loading: !fresh || state.loading, reload };
}

// Follows a job until it ends: {job, error}. `onDone(job)` runs once when it stops running.
export function useJob(jobId, onDone) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const done = useRef(onDone);
  done.current = onDone;
  useEffect(() => {
    if (!jobId) return undefined;
    let stopped = false;
    setJob(null);
    setError(null);
    const tick = async () => {
      try {
        const current = await api('GET', `/jobs/${jobId}`);
        if (stopped) return;
        setJob(current);
        if (current.status === 'running') {
          setTimeout(tick, 600);
        } else if (done.current) {
          done.current(current);
        }
      } catch (failure) {
        if (!stopped) setError(failure);
      }
    };
    tick();
    return () => { stopped = true; };
  }, [jobId]);
  return { job, error };
}

const STEP_NAMES = {
  dns: 'DNS: the host name resolves',
  tcp: 'TCP: a connection opens',
  greeting: 'Greeting: the server answers 220',
  starttls: 'STARTTLS: the connection is encrypted',
  tls: 'TLS: the connection is encrypted',
  certificate: 'Certificate: valid for the host name',
  token: 'Token: the app gets an access token',
  auth: 'AUTH: the server accepts the credentials',
  sender: 'Sender: the server lets the mailbox send as the address',
};

// A live check, step by step: finished steps with their detail, the running one with a spinner, the rest waiting.
export function CheckSteps({ job }) {
  const finished = job.steps || [];
  const failed = finished.some((step) => !step.ok);
  const planned = job.planned_steps && job.planned_steps.length ? job.planned_steps : finished.map((s) => s.name);
  const rows = planned.map((name, index) => {
    const step = finished.find((s) => s.name === name);
    if (step) return { name, state: step.ok ? 'ok' : 'failed', detail: step.detail, ms: step.elapsed_ms };
    const running = !failed && job.status === 'running' && index === finished.length;
    return { name, state: failed || job.status !== 'running' ? 'skipped' : running ? 'running' : 'waiting' };
  });
  return html`<ol class="steps" aria-live="polite">
    ${rows.map((row) => html`<li class=${`step step-${row.state}`}>
      <span class="step-mark" aria-hidden="true">${{ ok: '✓', failed: '✗', running: '…', waiting: '·', skipped: '–' }[row.state]}</span>
      <span class="step-name">${STEP_NAMES[row.name] || row.name}</span>
      <span class="step-state">${{ ok: 'passed', failed: 'failed', running: 'running', waiting: 'waiting', skipped: 'not run' }[row.state]}</span>
      ${row.detail && html`<span class="step-detail">${row.detail}${row.ms ? ` (${Math.round(row.ms)} ms)` : ''}</span>`}
    </li>`)}
  </ol>`;
}

// A job's outcome: the summary and the fix of a failure, or its success.
export function JobOutcome({ job }) {
  if (!job || job.status === 'running') return null;
  if (job.status === 'succeeded') return html`<${Notice} tone="ok">${job.summary || 'Done.'}<//>`;
  return html`<div class="error-box" role="alert">
    <p class="error-message"><strong>${inConsoleTerms(job.summary) || 'It failed.'}</strong></p>
    ${job.fix && html`<p class="error-action"><span class="label">What to do: </span>${inConsoleTerms(job.fix)}</p>`}
  </div>`;
}

export function Progress({ job }) {
  if (!job) return null;
  const lines = job.progress || [];
  return html`<div class="progress" aria-live="polite">
    ${job.status === 'running' && html`<${Spinner} label=${lines.length ? lines[lines.length - 1] : 'Starting…'} />`}
    ${lines.length > 0 && html`<details class="progress-lines"><summary>Every step (${lines.length})</summary>
      <ol>${lines.map((line) => html`<li>${line}</li>`)}</ol></details>`}
  </div>`;
}

export function when(text) {
  if (!text) return '–';
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString();
}
