/**
 * Checks a model before anything large moves: a hub id's config.json is fetched and must parse into a
 * supported architecture, and a picked folder must hold config.json, tokenizer.json and safetensors weights
 * with a supported config. Both throw the engine's named errors with a message for the user.
 */
import { ModelFileMissingError, ModelFormatError } from '../errors';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { authHeaders, tokenRefusal, type HubAuth } from '../storage/token-policy';

/** Hub repo ids: `org/name` (letters, digits, `-`, `_`, `.`), as the hub allows them. */
const REPO_ID = /^[A-Za-z0-9][\w.-]{0,95}\/[\w.-]{1,96}$/;

/** Files of a model folder the engine reads; everything else in a picked folder (GGUF, ONNX, README) is left out. */
const MODEL_FILE = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|chat_template\.jinja|special_tokens_map\.json|model\.safetensors\.index\.json|[^/\\]+\.safetensors)$/;

/** Throws ModelFormatError unless `id` looks like a hub repo id. */
export function checkRepoId(id: string): string {
  const repo = id.trim().replace(/^https?:\/\/huggingface\.co\//, '').replace(/\/+$/, '');
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new ModelFormatError(`"${id}" is not a model id. Use the hub's org/name form, e.g. HuggingFaceTB/SmolLM2-135M-Instruct.`);
  }
  return repo;
}

/** A hub model reference: a repo, and for GGUF repos the file. */
export interface ModelRef {
  repo: string;
  file?: string;
}

/**
 * Parse `org/name`, `org/name/file.gguf`, `org/name:file.gguf` or a hub URL of a repo or of one of its GGUF
 * files (`…/blob/main/x.gguf`, `…/resolve/main/x.gguf`). Throws ModelFormatError like checkRepoId.
 */
export function parseModelRef(id: string): ModelRef {
  const text = id.trim().replace(/^https?:\/\/huggingface\.co\//, '').replace(/\/+$/, '');
  const m = /^([^/:]+\/[^/:]+)(?::|\/(?:(?:blob|resolve)\/main\/)?)([^/\\]+\.gguf)$/i.exec(text);
  if (m) return { repo: checkRepoId(m[1]), file: m[2] };
  return { repo: checkRepoId(text) };
}

function parseConfigText(text: string, where: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`config.json of ${where} is not valid JSON (${(err as Error).message}).`);
  }
  return parseModelConfig(raw);
}

/** Fetch and validate a hub repo's config.json; no weight is requested. */
export async function fetchHubConfig(baseUrl: string, repo: string, auth: HubAuth = {}, fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<ModelConfig> {
  const url = `${baseUrl.replace(/\/+$/, '')}/${repo}/resolve/main/config.json`;
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: authHeaders(url, auth.token, auth.policy) });
  } catch (err) {
    throw new ModelFileMissingError(`Could not reach ${url} (${(err as Error).message}). Check the hub URL and your connection.`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new ModelFileMissingError(`${repo} is gated or private (HTTP ${res.status}): accept its license on the hub, then paste an access token.${tokenRefusal(url, auth)}`);
  }
  if (res.status === 404) throw new ModelFileMissingError(`There is no model "${repo}" at ${baseUrl} (config.json: HTTP 404). Check the id and the hub URL.`);
  if (!res.ok) throw new ModelFileMissingError(`config.json of ${repo} is not available (HTTP ${res.status}). Try again later.`);
  return parseConfigText(await res.text(), repo);
}

/** A picked folder, checked. */
export interface PickedModel {
  name: string;
  /** Only the files the engine reads. */
  files: File[];
  config: ModelConfig;
}

/** Validate the files of a picked folder (the folder's own files; subfolders are ignored). */
export async function checkModelFolder(picked: readonly File[]): Promise<PickedModel> {
  const top = picked.filter((f) => (f.webkitRelativePath || f.name).split('/').length <= 2);
  const name = (picked[0]?.webkitRelativePath || '').split('/')[0] || 'imported model';
  const files = top.filter((f) => MODEL_FILE.test(f.name));
  const has = (n: string) => files.some((f) => f.name === n);
  const missing = ['config.json', 'tokenizer.json'].filter((n) => !has(n));
  if (!files.some((f) => f.name.endsWith('.safetensors'))) missing.push('*.safetensors weights');
  if (missing.length) {
    throw new ModelFileMissingError(`The folder "${name}" lacks ${missing.join(', ')}. Pick a folder in Hugging Face layout: config.json, tokenizer.json (and tokenizer_config.json), *.safetensors.`);
  }
  const config = parseConfigText(await (files.find((f) => f.name === 'config.json') as File).text(), `the folder "${name}"`);
  return { name, files, config };
}
