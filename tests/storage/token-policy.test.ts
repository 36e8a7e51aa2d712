/**
 * Token safety (issue #12, item 4): the access token goes only over https to huggingface.co (and hf.co,
 * their subdomains), or to hosts the user allowed; never to a hub URL from a link until confirmed, never to
 * a look-alike host, never along a redirect to another host. The policy is pure; HubUpstream is checked
 * against two real hub servers (one redirecting to the other) with Node's fetch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRepos, startHubServer, type HubServer } from '../../scripts/hub-server';
import { ModelFileMissingError } from '../../src/errors';
import { authHeaders, isHubHost, mayAttachToken, parseAllowedHosts, type TokenPolicy } from '../../src/storage/token-policy';
import { HubUpstream } from '../../src/storage/upstream';

const none: TokenPolicy = { allowedHosts: [] };
const ok = (url: string, policy: TokenPolicy = none) => mayAttachToken(url, policy) === true;

describe('mayAttachToken', () => {
  it('fault: token host huggingface.co and its subdomains over https only', () => {
    expect(ok('https://huggingface.co/org/m/resolve/main/config.json')).toBe(true);
    expect(ok('https://HuggingFace.co./x')).toBe(true);
    expect(ok('https://cdn-lfs-us-1.huggingface.co/x')).toBe(true);
    expect(ok('https://cas-bridge.xethub.hf.co/x')).toBe(true);
    expect(ok('https://hf.co/x')).toBe(true);
    expect(ok('https://huggingface.co:443/x')).toBe(true);
    expect(ok('http://huggingface.co/x')).toBe(false);
    expect(ok('https://huggingface.co:8443/x')).toBe(false);
  });

  it('fault: token host look-alikes get no token', () => {
    for (const url of ['https://huggingface.co.evil.com/x', 'https://evilhuggingface.co/x', 'https://huggingface.com/x', 'https://hf.co.evil.com/x', 'https://xhf.co/x', 'https://huggingface.co@evil.com/x', 'ws://huggingface.co/x', 'not a url']) {
      expect(ok(url), url).toBe(false);
    }
    expect(ok('https://evil.com/?https://huggingface.co/')).toBe(false);
  });

  it('fault: token host not allowed gets a message naming what to allow', () => {
    const why = mayAttachToken('http://127.0.0.1:8893/local/m/resolve/main/config.json');
    expect(why).toBe('The access token is only sent to huggingface.co over https; add http://127.0.0.1:8893 in Hub settings (Allowed token hosts) to allow it. Loading without the token: public files still load.');
    expect(mayAttachToken('https://mirror.example.org/x')).toContain('add mirror.example.org in Hub settings');
  });

  it('fault: token host allow-list: https by host (and port), plain http only when written as http://', () => {
    const policy: TokenPolicy = { allowedHosts: parseAllowedHosts('mirror.example.org, https://other.example:8443\nhttp://127.0.0.1:8893 bad/path') };
    expect(policy.allowedHosts).toEqual(['mirror.example.org', 'other.example:8443', 'http://127.0.0.1:8893']);
    expect(ok('https://mirror.example.org/x', policy)).toBe(true);
    expect(ok('http://mirror.example.org/x', policy)).toBe(false);
    expect(ok('https://mirror.example.org:444/x', policy)).toBe(false);
    expect(ok('https://sub.mirror.example.org/x', policy)).toBe(false);
    expect(ok('https://other.example:8443/x', policy)).toBe(true);
    expect(ok('https://other.example/x', policy)).toBe(false);
    expect(ok('http://127.0.0.1:8893/x', policy)).toBe(true);
    expect(ok('http://127.0.0.1:8894/x', policy)).toBe(false);
    expect(ok('https://127.0.0.1:8893/x', policy)).toBe(false);
  });

  it('fault: token host from a link is not trusted until confirmed, allow-listed or not', () => {
    const policy: TokenPolicy = { allowedHosts: ['mirror.example.org'], untrustedOrigins: ['https://mirror.example.org', 'https://huggingface.co'] };
    expect(mayAttachToken('https://mirror.example.org/x', policy)).toMatch(/came from a link/);
    expect(ok('https://huggingface.co/x', policy)).toBe(false);
    expect(ok('https://mirror.example.org/x', { ...policy, untrustedOrigins: [] })).toBe(true);
  });

  it('builds the Authorization header only where the token may go', () => {
    expect(authHeaders('https://huggingface.co/x', 'hf_a')).toEqual({ Authorization: 'Bearer hf_a' });
    expect(authHeaders('https://huggingface.co/x', undefined)).toEqual({});
    expect(authHeaders('https://evil.com/x', 'hf_a')).toEqual({});
    expect(isHubHost('huggingface.co.')).toBe(true);
  });
});

describe('HubUpstream with a token', () => {
  let cdn: HubServer;
  let front: HubServer;
  const seen: Array<{ server: string; url: string; auth?: string }> = [];
  beforeAll(async () => {
    const repos = defaultRepos();
    cdn = await startHubServer({ repos, onRequest: (r) => seen.push({ server: 'cdn', url: r.url, auth: r.headers.authorization }) });
    front = await startHubServer({ repos, redirectTo: cdn.baseUrl, onRequest: (r) => seen.push({ server: 'front', url: r.url, auth: r.headers.authorization }) });
  });
  afterAll(async () => {
    await cdn.close();
    await front.close();
  });

  it('fault: token host over plain http gets no Authorization header, and the public file still loads', async () => {
    seen.length = 0;
    const up = new HubUpstream('local/stories260k', cdn.baseUrl, 'main', 'hf_secret');
    expect(await up.readAll('config.json')).not.toBeNull();
    expect(seen).toEqual([{ server: 'cdn', url: '/local/stories260k/resolve/main/config.json', auth: undefined }]);
  });

  it('fault: token host reached by a redirect to another host gets no token', async () => {
    seen.length = 0;
    const policy: TokenPolicy = { allowedHosts: [front.baseUrl] };
    const up = new HubUpstream('local/stories260k', front.baseUrl, 'main', 'hf_secret', undefined, policy);
    expect(await up.readAll('config.json')).not.toBeNull();
    expect(seen.map((s) => [s.server, s.auth])).toEqual([['front', 'Bearer hf_secret'], ['cdn', undefined]]);
  });

  it('fault: token host refused is named when the hub answers 401', async () => {
    const gated = (async () => new Response('{}', { status: 401 })) as typeof fetch;
    const up = new HubUpstream('org/gated', 'http://127.0.0.1:9', 'main', 'hf_secret', gated);
    const err = await up.readAll('config.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileMissingError);
    expect((err as Error).message).toMatch(/gated or private\. The access token is only sent to huggingface\.co over https; add http:\/\/127\.0\.0\.1:9/);
  });
});
