/**
 * Turns a WGSL file into the source for one device variant. Types cannot be WGSL `override`s, so the
 * storage element types and `enable` directives are supplied here; everything else is specialized with
 * override constants by the pipeline cache.
 *
 * Directives understood in .wgsl files (each on its own line):
 *   #include NAME      inline the library file shaders/lib/NAME.wgsl
 *   #if FLAG / #else / #endif   keep lines by a boolean flag (SUBGROUPS, F16, or a caller flag)
 */

/** Element types and features a shader is assembled for. */
export interface ShaderVariant {
  /** Element type of weight storage (`wt` in WGSL). */
  weight: 'f32' | 'f16';
  /** Element type of full-precision KV storage (`kvt` in WGSL). */
  kv: 'f32' | 'f16';
  subgroups: boolean;
  /** Extra #if flags. */
  flags?: Record<string, boolean>;
}

/** Stable text key of a variant, for pipeline cache keys. */
export function variantKey(v: ShaderVariant): string {
  const flags = Object.entries(v.flags ?? {})
    .filter(([, on]) => on)
    .map(([k]) => k)
    .sort()
    .join('+');
  return `w${v.weight}_kv${v.kv}${v.subgroups ? '_sg' : ''}${flags ? '_' + flags : ''}`;
}

/** Expand #if/#else/#endif and #include; a library is included once, however many files include it. */
function preprocess(source: string, flags: Record<string, boolean>, libraries: Record<string, string>, depth = 0, included = new Set<string>()): string {
  if (depth > 4) throw new Error('WGSL #include nesting is too deep');
  const out: string[] = [];
  const keep: boolean[] = [];
  const active = () => keep.every(Boolean);
  for (const line of source.split('\n')) {
    const t = line.trim();
    if (t.startsWith('#if ')) {
      const name = t.slice(4).trim();
      const negate = name.startsWith('!');
      const value = Boolean(flags[negate ? name.slice(1) : name]);
      keep.push(negate ? !value : value);
    } else if (t === '#else') {
      keep[keep.length - 1] = !keep[keep.length - 1];
    } else if (t === '#endif') {
      keep.pop();
    } else if (t.startsWith('#include ')) {
      if (!active()) continue;
      const name = t.slice(9).trim();
      const lib = libraries[name];
      if (lib === undefined) throw new Error(`WGSL library "${name}" not found`);
      if (included.has(name)) continue;
      included.add(name);
      out.push(preprocess(lib, flags, libraries, depth + 1, included));
    } else if (active()) {
      out.push(line);
    }
  }
  if (keep.length) throw new Error('WGSL #if without #endif');
  return out.join('\n');
}

/** Produce device-ready WGSL for a variant. */
export function assembleShader(source: string, variant: ShaderVariant, libraries: Record<string, string>): string {
  const usesF16 = variant.weight === 'f16' || variant.kv === 'f16';
  const flags = { SUBGROUPS: variant.subgroups, F16: usesF16, ...(variant.flags ?? {}) };
  const header = [
    usesF16 ? 'enable f16;' : '',
    variant.subgroups ? 'enable subgroups;' : '',
    `alias wt = ${variant.weight};`,
    `alias kvt = ${variant.kv};`,
    // Every K/V store goes through to_kvt: an f16 cache clamps to ±65504 (f16's largest finite value) rather
    // than storing ±Inf, which would turn attention into NaN; an f32 cache stores the value as it is.
    variant.kv === 'f16' ? 'fn to_kvt(x: f32) -> kvt { return kvt(clamp(x, -65504.0, 65504.0)); }' : 'fn to_kvt(x: f32) -> kvt { return x; }',
  ]
    .filter(Boolean)
    .join('\n');
  return `${header}\n${preprocess(source, flags, libraries)}`;
}
