/**
 * The engine as an OpenAI-compatible server inside the page: a `fetch` function that answers
 * `POST …/v1/chat/completions`, `POST …/v1/completions` (server-sent events when `stream` is true) and
 * `GET …/v1/models`. Hand it to the official client: `new OpenAI({ fetch: engineFetch(engine), baseURL:
 * 'http://kvtab.local/v1', apiKey: 'unused', dangerouslyAllowBrowser: true })`. Nothing leaves the page.
 * Errors answer with OpenAI's body `{ error: { message, type, code, param } }` and a matching status; an
 * error after streaming began is sent as one `data: {"error": …}` event, as OpenAI does.
 */
import { EngineError, InvalidRequestError, openAiErrorKind } from '../errors';
import type { KvtabEngine } from './engine';
import type { ChatCompletionCreateParams, CompletionCreateParams } from './types';

/** OpenAI's error body for an error. */
export function errorBody(err: unknown): { status: number; body: { error: { message: string; type: string; code: string; param: string | null } } } {
  const e = err instanceof Error ? err : new Error(String(err));
  const kind = openAiErrorKind(e.name);
  const param = (e as { param?: string | null }).param ?? null;
  return { status: kind.status, body: { error: { message: e.message, type: kind.type, code: kind.code, param } } };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const failure = (err: unknown) => {
  const { status, body } = errorBody(err);
  return json(status, body);
};

/**
 * Server-sent events of `chunks`, then `data: [DONE]`. The first chunk is read before answering, so an error
 * that comes before any token (context overflow, busy engine) gets its own status. Cancelling the body (the
 * client aborted) stops the reply.
 */
async function sse(chunks: AsyncIterable<unknown> & { controller: AbortController }): Promise<Response> {
  const encoder = new TextEncoder();
  const it = chunks[Symbol.asyncIterator]();
  let first: Promise<IteratorResult<unknown>> | null = Promise.resolve(await it.next());
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await (first ?? it.next());
        first = null;
        if (next.done) {
          controller.enqueue(encoder.encode('data: [DONE]\n\n'));
          controller.close();
        } else controller.enqueue(encoder.encode(`data: ${JSON.stringify(next.value)}\n\n`));
      } catch (err) {
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(errorBody(err).body)}\n\n`));
        controller.close();
      }
    },
    async cancel() {
      chunks.controller.abort();
      await it.return?.();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}

async function readBody(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new InvalidRequestError('The request body is not valid JSON.');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequestError('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/** The error a real fetch rejects with when its signal aborts before the response. */
function abortError(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'AbortError' ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** `answer`, or an AbortError as soon as `signal` aborts first (as a real fetch does; the reply itself stops too). */
function abortable(answer: Promise<Response>, signal: AbortSignal | null | undefined): Promise<Response> {
  if (!signal) return answer;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    answer.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** A `fetch` that serves the OpenAI API from `engine`. Any path ending in the routes works, so any baseURL does. */
export function engineFetch(engine: KvtabEngine): typeof fetch {
  return (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    return abortable(serve(engine, request, init?.signal ?? request.signal), init?.signal ?? request.signal);
  };
}

/** Answer one request. */
async function serve(engine: KvtabEngine, request: Request, signal: AbortSignal | null | undefined): Promise<Response> {
  const path = new URL(request.url).pathname.replace(/\/+$/, '');
  try {
    if (path.endsWith('/models')) {
      if (request.method !== 'GET') return json(405, errorBody(new InvalidRequestError(`${request.method} ${path}: use GET.`)).body);
      return json(200, await engine.models.list());
    }
    const model = /\/models\/([^/]+(?:\/[^/]+)?)$/.exec(path);
    if (model) {
      const list = await engine.models.list();
      const found = list.data.find((m) => m.id === decodeURIComponent(model[1]));
      return found ? json(200, found) : json(404, { error: { message: `The model "${model[1]}" is not loaded.`, type: 'not_found_error', code: 'model_not_found', param: 'model' } });
    }
    const chat = path.endsWith('/chat/completions');
    if (!chat && !path.endsWith('/completions')) return json(404, { error: { message: `No route for ${request.method} ${path}.`, type: 'not_found_error', code: 'unknown_url', param: null } });
    if (request.method !== 'POST') return json(405, errorBody(new InvalidRequestError(`${request.method} ${path}: use POST.`)).body);
    const body = { ...(await readBody(request)), signal: signal ?? undefined } as unknown as ChatCompletionCreateParams & CompletionCreateParams;
    if (body.stream) {
      const chunks = chat ? await engine.chat.completions.create({ ...body, stream: true }) : await engine.completions.create({ ...body, stream: true });
      return await sse(chunks);
    }
    return json(200, chat ? await engine.chat.completions.create({ ...body, stream: false }) : await engine.completions.create({ ...body, stream: false }));
  } catch (err) {
    if (!(err instanceof EngineError)) console.warn('kvtab fetch:', err);
    return failure(err);
  }
}
