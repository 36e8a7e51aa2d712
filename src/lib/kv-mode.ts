/**
 * KV mode names as the engine reports them (`EngineStats.kvMode`): `full`, `int8`, `kivi-4`, `kivi-2`, `zip`,
 * `merge`, `merge+kivi-2`, each optionally `+rot`. `parseKvMode` turns one back into a spec with default
 * parameters, so `engine.kv.setMode('kivi-2+rot')` works; a spec object sets the parameters.
 */
import { InvalidRequestError } from '../errors';
import type { KvModeSpec } from '../worker/api';

const NAME = /^(full|int8|kivi-(2|4)|zip|merge|merge\+kivi-(2|4))(\+rot)?$/;

/** The spec a mode name stands for (parameters at their defaults). */
export function parseKvMode(name: string): KvModeSpec {
  const m = NAME.exec(name.trim());
  if (!m) throw new InvalidRequestError(`"${name}" is not a KV mode: use full, int8, kivi-4, kivi-2, zip, merge or merge+kivi-2 (or -4), optionally with +rot.`, 'mode');
  const rotate = m[4] ? { rotate: true } : {};
  const base = m[1];
  if (base.startsWith('kivi-')) return { mode: 'kivi', bits: Number(m[2]) as 2 | 4, ...rotate };
  if (base.startsWith('merge+kivi-')) return { mode: 'merge+kivi', bits: Number(m[3]) as 2 | 4, ...rotate };
  return { mode: base as 'full' | 'int8' | 'zip' | 'merge', ...rotate } as KvModeSpec;
}
