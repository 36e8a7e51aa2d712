/**
 * Stand-in for `@huggingface/transformers` in the device bundle (bench/device/vite.config.ts aliases it here).
 * The speed benchmark feeds token ids straight to the model and never encodes or decodes text, and the real
 * library would drag onnxruntime-node and sharp (hundreds of MB of native code) into a folder that must stay
 * under 60 MiB. Engine.load still builds a tokenizer, so this one reads BOS/EOS from tokenizer.json and
 * refuses to encode or decode.
 */
type Json = Record<string, unknown>;

export const env = { allowRemoteModels: false };

function tokenId(tokenizerJson: Json, token: unknown): number | null {
  const content = typeof token === 'string' ? token : token && typeof token === 'object' ? (token as Json).content : undefined;
  if (typeof content !== 'string') return null;
  const added = (tokenizerJson.added_tokens as Array<{ id: number; content: string }> | undefined) ?? [];
  return added.find((t) => t.content === content)?.id ?? null;
}

export class PreTrainedTokenizer {
  readonly bos_token_id: number | null;
  readonly eos_token_id: number | null;

  constructor(tokenizerJson: Json, config: Json) {
    this.bos_token_id = tokenId(tokenizerJson, config.bos_token);
    this.eos_token_id = tokenId(tokenizerJson, config.eos_token);
  }

  private unsupported(): never {
    throw new Error('The device benchmark bundle carries no tokenizer (bench/device/tokenizer-stub.ts): feed token ids.');
  }

  encode(_text: string, _options?: unknown): number[] {
    return this.unsupported();
  }

  decode(_ids: number[], _options?: unknown): string {
    return this.unsupported();
  }

  apply_chat_template(_messages: unknown, _options?: unknown): string {
    return this.unsupported();
  }
}
