/**
 * The model manager's hub settings: the hub URL (from a `?hub=` link or saved), the access token (memory
 * only), the "Allowed token hosts" list (saved), and the notices that go with them: a plain-http hub URL, a
 * hub URL that came from a link (no token until the user trusts it), a token that was held back. Where the
 * token may go is decided by storage/token-policy.ts.
 */
import { DEFAULT_HUB_URL } from '../model/source';
import { mayAttachToken, parseAllowedHosts, type HubAuth, type TokenPolicy } from '../storage/token-policy';
import { el, field } from './dom';

const HUB_URL_KEY = 'kvtab.hubUrl';
const TOKEN_HOSTS_KEY = 'kvtab.tokenHosts';

/** The hub settings' controls and what the model manager asks of them. */
export interface HubSettings {
  /** The fields (inside the "Hub settings" disclosure). */
  fields: HTMLElement;
  /** The notices, shown where the user looks while loading. */
  notices: HTMLElement;
  /** The hub URL's input, for change listeners. */
  hubUrl: HTMLInputElement;
  /** The hub base URL, without a trailing slash. */
  baseUrl(): string;
  /** The token, if one is entered. */
  token(): string | undefined;
  /** The token with the policy that says where it may go. */
  auth(): HubAuth;
  /** Say (or stop saying) that the token is held back from `url`; call before each hub load. */
  noteToken(url: string): void;
}

/** Origin of a URL, or null when it does not parse. */
function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** Build the hub settings. */
export function createHubSettings(): HubSettings {
  const fromLink = new URLSearchParams(location.search).get('hub');
  const saved = localStorage.getItem(HUB_URL_KEY);
  const hubUrl = el('input', { id: 'hub-url', type: 'url', value: fromLink ?? saved ?? DEFAULT_HUB_URL, spellcheck: false });
  const token = el('input', { id: 'hub-token', type: 'password', placeholder: 'hf_… (only for gated models; kept in memory)', autocomplete: 'off' });
  const tokenHosts = el('input', { id: 'token-hosts', placeholder: 'e.g. mirror.example.org, http://127.0.0.1:8080', spellcheck: false, value: localStorage.getItem(TOKEN_HOSTS_KEY) ?? '' });
  // A link's hub URL is not trusted with the token until confirmed, unless it is the one the user saved.
  let linkUntrusted = fromLink !== null && originOf(fromLink) !== originOf(saved ?? DEFAULT_HUB_URL);

  const httpWarning = el('p', { id: 'hub-http-warning', className: 'mm-warning', role: 'status', hidden: true });
  const trust = el('button', { id: 'hub-trust', type: 'button', className: 'mm-button', textContent: 'Trust this hub' });
  const linkText = el('span');
  const linkNotice = el('p', { id: 'hub-link-notice', className: 'mm-warning', hidden: true }, linkText, ' ', trust);
  const tokenNotice = el('p', { id: 'token-notice', className: 'mm-warning', role: 'status', hidden: true });
  const notices = el('div', { className: 'mm-notices' }, httpWarning, linkNotice, tokenNotice);

  const baseUrl = () => hubUrl.value.trim().replace(/\/+$/, '') || DEFAULT_HUB_URL;
  const policy = (): TokenPolicy => {
    const origin = originOf(baseUrl());
    return { allowedHosts: parseAllowedHosts(tokenHosts.value), untrustedOrigins: linkUntrusted && origin ? [origin] : [] };
  };

  function refresh(): void {
    const url = baseUrl();
    const plain = /^http:/i.test(url);
    httpWarning.hidden = !plain;
    httpWarning.textContent = plain ? `The hub URL ${url} uses plain http: files (and a token, if you allow this host) travel unencrypted.` : '';
    linkNotice.hidden = !linkUntrusted;
    linkText.textContent = `The hub URL ${url} came from a link: the access token is not sent to it until you trust it.`;
  }

  trust.addEventListener('click', () => {
    linkUntrusted = false;
    localStorage.setItem(HUB_URL_KEY, hubUrl.value.trim());
    tokenNotice.hidden = true;
    refresh();
  });
  hubUrl.addEventListener('change', () => {
    linkUntrusted = false; // typed by the user
    localStorage.setItem(HUB_URL_KEY, hubUrl.value.trim());
    refresh();
  });
  tokenHosts.addEventListener('change', () => {
    tokenHosts.value = parseAllowedHosts(tokenHosts.value).join(', ');
    localStorage.setItem(TOKEN_HOSTS_KEY, tokenHosts.value);
  });
  refresh();

  const fields = el(
    'div',
    { className: 'mm-hub-fields' },
    field('Hub URL', hubUrl, 'A mirror or local server laid out like huggingface.co'),
    field('Access token', token, 'For gated models (Llama). Never stored; sent only to huggingface.co over https and to the hosts below.'),
    field('Allowed token hosts', tokenHosts, 'Other hosts that may receive the token (https; write http://host:port to allow plain http). Saved.'),
  );
  const tokenValue = () => token.value.trim() || undefined;
  return {
    fields,
    notices,
    hubUrl,
    baseUrl,
    token: tokenValue,
    auth: () => ({ token: tokenValue(), policy: policy() }),
    noteToken(url: string): void {
      const verdict = tokenValue() ? mayAttachToken(url, policy()) : true;
      tokenNotice.hidden = verdict === true;
      tokenNotice.textContent = verdict === true ? '' : verdict;
    },
  };
}
