/**
 * GGUF models on a hub: a repo's `.gguf` files with their sizes and quantization (from the hub's tree API
 * and the file names, the way hub repos name them: `SmolLM2-360M-Instruct-Q4_K_M.gguf`), a picker that lists
 * them with a Load button each, and the check of a picked local `.gguf` file (its magic, before it is copied).
 */
import { ModelFileMissingError, ModelFormatError } from '../errors';
import { authHeaders, tokenRefusal, type HubAuth } from '../storage/token-policy';
import { el } from './dom';
import { formatSize } from './load-progress';

/** One file of a hub repo. */
export interface HubFile {
  path: string;
  size: number;
}

/** Quantization named in a GGUF file name, e.g. `Q4_K_M`, `Q8_0`, `F16`; `GGUF` when the name says none. */
export function ggufQuantOfName(name: string): string {
  const m = /(?:^|[-_.])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?=[-_.]|\.gguf$)/i.exec(name.replace(/\.gguf$/i, '') + '.gguf');
  return m ? m[1].toUpperCase() : 'GGUF';
}

/**
 * A repo's top-level files from `<base>/api/models/<repo>/tree/<revision>`, or null when the server has no
 * tree API (a plain mirror): then only config.json-based loading is offered.
 */
export async function listHubFiles(baseUrl: string, repo: string, auth: HubAuth = {}, fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<HubFile[] | null> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/models/${repo}/tree/main`;
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: authHeaders(url, auth.token, auth.policy) });
  } catch {
    return null;
  }
  if (res.status === 401 || res.status === 403) throw new ModelFileMissingError(`${repo} is gated or private (HTTP ${res.status}): accept its license on the hub, then paste an access token.${tokenRefusal(url, auth)}`);
  if (!res.ok) return null;
  const body = (await res.json().catch(() => null)) as unknown;
  if (!Array.isArray(body)) return null;
  return body
    .filter((e): e is { type: string; path: string; size: number } => typeof e === 'object' && e !== null && (e as { type?: unknown }).type === 'file' && typeof (e as { path?: unknown }).path === 'string')
    .map((e) => ({ path: e.path, size: typeof e.size === 'number' ? e.size : NaN }));
}

/** The `.gguf` files among a repo's files, smallest first (split GGUF shards `-00001-of-00003` are not supported and left out). */
export function ggufFilesOf(files: readonly HubFile[]): HubFile[] {
  return files.filter((f) => /\.gguf$/i.test(f.path) && !/-\d{5}-of-\d{5}\.gguf$/i.test(f.path) && !f.path.includes('/')).sort((a, b) => a.size - b.size);
}

/** The list of a repo's GGUF files, each with its size, quantization and a Load button. */
export function renderGgufPicker(repo: string, files: readonly HubFile[], onLoad: (file: string) => void): HTMLElement {
  return el(
    'ul',
    { id: 'gguf-files', className: 'mm-catalog' },
    ...files.map((f) => {
      const button = el('button', { type: 'button', className: 'mm-button', textContent: 'Load', dataset: { file: f.path } });
      button.addEventListener('click', () => onLoad(f.path));
      return el(
        'li',
        { className: 'mm-card mm-gguf', dataset: { file: f.path } },
        el('div', { className: 'mm-card-head' }, el('strong', {}, f.path), el('span', { className: 'mm-badge', textContent: ggufQuantOfName(f.path) }), button),
        el('div', { className: 'mm-card-id' }, `${repo} · ${Number.isFinite(f.size) ? formatSize(f.size) : 'size unknown'}`),
      );
    }),
  );
}

/** Check a picked `.gguf` file's magic before it is imported. */
export async function checkGgufFile(file: File): Promise<File> {
  if (!/\.gguf$/i.test(file.name)) throw new ModelFormatError(`"${file.name}" is not a .gguf file. Pick a GGUF model file, or import a folder in Hugging Face layout.`);
  const magic = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (String.fromCharCode(...magic) !== 'GGUF') {
    throw new ModelFormatError(`"${file.name}" does not start with the GGUF magic: it is not a GGUF file, or it is damaged. Download it again.`);
  }
  return file;
}
