// One place that binds htm to Preact: every component writes html`...` instead of JSX (no compile step of its own).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
