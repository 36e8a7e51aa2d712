/**
 * One transcript entry in the DOM: a user message (with Edit → edit-and-resend), a model reply (rendered
 * as sanitized Markdown or text, with its token count, tokens/s and finish reason; Regenerate and Copy on
 * the last one), or a notice from the app (budget, mode switches, errors).
 */
import type { ChatEntry } from '../../storage/chat-history';
import { el } from '../dom';
import { renderModelText } from '../markdown';

/** What a message's buttons do. */
export interface MessageActions {
  regenerate(): void;
  editAndResend(entryId: string, text: string): void;
  canAct(): boolean;
}

const ROLE_LABEL = { user: 'You', assistant: 'Model', notice: 'Note' } as const;
const FINISH_TEXT: Record<string, string> = {
  eos: 'end of reply',
  stop: 'end of turn',
  length: 'max tokens reached',
  abort: 'stopped',
  context: 'context full',
};

/** The meta line of a reply: tokens, tokens/s, why it ended, KV mode. */
export function replyMeta(e: ChatEntry, liveTokensPerSecond?: number): string {
  if (e.role !== 'assistant') return '';
  const parts: string[] = [];
  if (e.status === 'streaming') parts.push('generating…');
  if (e.tokens !== undefined) parts.push(`${e.tokens} token${e.tokens === 1 ? '' : 's'}`);
  const tps = e.status === 'streaming' ? liveTokensPerSecond : e.tokensPerSecond;
  if (tps) parts.push(`${tps.toFixed(1)} tok/s`);
  if (e.status !== 'streaming' && e.content !== '' && e.content.trim() === '') parts.push('only whitespace');
  if (e.status === 'interrupted') parts.push('interrupted by a reload');
  else if (e.status === 'error') parts.push('failed');
  else if (e.finishReason && e.status !== 'streaming') parts.push(FINISH_TEXT[e.finishReason] ?? e.finishReason);
  if (e.kvMode) parts.push(`KV ${e.kvMode}`);
  return parts.join(' · ');
}

/** A rendered entry; `update` redraws body and meta after the entry changed. */
export class MessageView {
  readonly element: HTMLElement;
  private readonly body = el('div', { className: 'msg-body' });
  private readonly meta = el('span', { className: 'msg-meta' });
  private readonly actions = el('div', { className: 'msg-actions' });
  private renderedText: string | null = null;
  private renderedFormat: 'markdown' | 'text' | null = null;

  constructor(
    readonly entry: ChatEntry,
    private readonly actionsFor: MessageActions,
  ) {
    this.element = el(
      'article',
      { className: `msg ${entry.role}`, dataset: { id: entry.id } },
      el('div', { className: 'msg-head' }, el('span', { className: 'msg-role' }, ROLE_LABEL[entry.role]), this.meta),
      this.body,
      this.actions,
    );
    if (entry.level) this.element.dataset.level = entry.level;
  }

  /** Redraw from the entry. User text is always plain; replies use `format`. */
  update(format: 'markdown' | 'text', isLastReply: boolean, liveTokensPerSecond?: number): void {
    const e = this.entry;
    const d = this.element.dataset;
    if (e.status) d.status = e.status;
    if (e.finishReason) d.finish = e.finishReason;
    this.meta.textContent = replyMeta(e, liveTokensPerSecond);
    if (e.content !== this.renderedText || format !== this.renderedFormat) {
      if (e.role === 'assistant') renderModelText(this.body, e.content, format);
      else this.body.textContent = e.content;
      this.renderedText = e.content;
      this.renderedFormat = format;
    }
    this.renderActions(isLastReply);
  }

  private renderActions(isLastReply: boolean): void {
    const e = this.entry;
    const buttons: HTMLButtonElement[] = [];
    if (e.role === 'user') {
      const edit = el('button', { type: 'button', className: 'edit', textContent: 'Edit' });
      edit.onclick = () => this.startEdit();
      buttons.push(edit);
    }
    if (e.role === 'assistant' && e.status !== 'streaming') {
      if (isLastReply) {
        const regen = el('button', { type: 'button', className: 'regenerate', textContent: 'Regenerate' });
        regen.onclick = () => this.actionsFor.regenerate();
        buttons.push(regen);
      }
      const copy = el('button', { type: 'button', className: 'copy', textContent: 'Copy' });
      copy.onclick = () => void navigator.clipboard?.writeText(e.content).catch(() => {});
      buttons.push(copy);
    }
    for (const b of buttons) if (!b.classList.contains('copy')) b.disabled = !this.actionsFor.canAct();
    this.actions.replaceChildren(...buttons);
  }

  private startEdit(): void {
    const input = el('textarea', { className: 'edit-input', value: this.entry.content, rows: Math.min(8, this.entry.content.split('\n').length + 1) });
    const send = el('button', { type: 'button', className: 'edit-send primary', textContent: 'Save & send' });
    const cancel = el('button', { type: 'button', className: 'edit-cancel', textContent: 'Cancel' });
    const restore = () => {
      this.renderedText = null;
      this.body.classList.remove('editing');
      this.body.textContent = this.entry.content;
      this.renderedText = this.entry.content;
    };
    send.disabled = !this.actionsFor.canAct();
    send.onclick = () => {
      const text = input.value.trim();
      if (!text) return;
      this.actionsFor.editAndResend(this.entry.id, text);
    };
    cancel.onclick = restore;
    this.body.classList.add('editing');
    this.body.replaceChildren(input, el('div', { className: 'edit-buttons' }, cancel, send));
    input.focus();
  }
}
