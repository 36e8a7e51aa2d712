/**
 * Where the Hugging Face access token may go: only over https to huggingface.co (or hf.co) and their
 * subdomains on the default port, or to a host the user approved in the model manager ("Allowed token
 * hosts"). A hub URL that came from a link (`?hub=`) gets no token, listed or not, until the user confirms it.
 * Every request that could carry the token (hub files, config.json checks, tree listings) asks
 * {@link mayAttachToken} first.
 *
 * Redirects: the hub answers file requests with a redirect to its CDN (cdn-lfs*.huggingface.co,
 * cas-bridge.xethub.hf.co) under a signed URL, which needs no token. Browsers (and Node's fetch) drop the
 * Authorization header when a redirect leaves the request's origin (Fetch standard, "HTTP-redirect fetch"),
 * so a token never follows a redirect to another host; e2e/token-safety.spec.ts checks that in Chromium.
 */

/** What the user decided about token hosts; serializable, so it travels to the worker with a load. */
export interface TokenPolicy {
  /**
   * Hosts the user approved: `host` or `host:port` (https only), or an origin `http://host:port` to allow
   * plain http to it.
   */
  allowedHosts: readonly string[];
  /** Origins of hub URLs that came from a link and that the user has not confirmed. */
  untrustedOrigins?: readonly string[];
}

/** The policy with nothing approved: the token goes only to huggingface.co over https. */
export const DEFAULT_TOKEN_POLICY: TokenPolicy = { allowedHosts: [] };

/** Hosts of the Hugging Face hub (and their subdomains). */
const HUB_DOMAINS = ['huggingface.co', 'hf.co'];

/** Whether `hostname` is a hub domain or a subdomain of one (not a look-alike such as huggingface.co.evil.com). */
export function isHubHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return HUB_DOMAINS.some((d) => h === d || h.endsWith(`.${d}`));
}

/** Allowed-host entries as the user typed them (commas, spaces or new lines between), normalized; bad ones left out. */
export function parseAllowedHosts(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/[\s,]+/)) {
    const entry = normalizeEntry(raw);
    if (entry && !out.includes(entry)) out.push(entry);
  }
  return out;
}

/** `host[:port]` in lower case, or `http://host:port` for a plain-http approval; null when it is not a host. */
function normalizeEntry(raw: string): string | null {
  const text = raw.trim().replace(/\/+$/, '');
  if (!text) return null;
  const plain = /^http:\/\//i.test(text);
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.username || url.search) return null;
    return plain ? `http://${url.host}` : url.host;
  } catch {
    return null;
  }
}

/**
 * Whether the token may be sent with a request to `url`: true, or the reason it may not (a message for the
 * user, naming what to add to the allowed hosts).
 */
export function mayAttachToken(url: string, policy: TokenPolicy = DEFAULT_TOKEN_POLICY): true | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `The access token was not sent: "${url}" is not a URL.`;
  }
  if (policy.untrustedOrigins?.includes(u.origin)) {
    return `The access token was not sent to ${u.host}: that hub URL came from a link. Confirm the hub in the model manager (Hub settings) to trust it.`;
  }
  if (u.protocol === 'https:' && u.port === '' && isHubHost(u.hostname)) return true;
  const allowed = policy.allowedHosts.map(normalizeEntry);
  if (u.protocol === 'https:' && (allowed.includes(u.host) || (u.port === '' && allowed.includes(u.hostname)))) return true;
  if (u.protocol === 'http:' && allowed.includes(`http://${u.host}`)) return true;
  const add = u.protocol === 'https:' ? u.host : `http://${u.host}`;
  return `The access token is only sent to huggingface.co over https; add ${add} in Hub settings (Allowed token hosts) to allow it. Loading without the token: public files still load.`;
}

/** The Authorization header for a request to `url`, when a token is set and may go there. */
export function authHeaders(url: string, token: string | undefined, policy?: TokenPolicy): Record<string, string> {
  return token && mayAttachToken(url, policy) === true ? { Authorization: `Bearer ${token}` } : {};
}

/** A token and where it may go, as the UI's hub requests take them. */
export interface HubAuth {
  token?: string;
  policy?: TokenPolicy;
}

/** ` <reason>` when a token is set but may not go to `url` (to append to a 401/403 message), else ''. */
export function tokenRefusal(url: string, auth: HubAuth): string {
  const verdict = auth.token ? mayAttachToken(url, auth.policy) : true;
  return verdict === true ? '' : ` ${verdict}`;
}
