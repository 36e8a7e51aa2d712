/**
 * The chat column: the open chat's transcript and the composer (input, Send, Stop, live tokens/s).
 * Streaming redraws are coalesced to one per animation frame; the text itself is kept per token.
 */
import type { ChatEntry, ChatRecord } from '../../storage/chat-history';
import { el } from '../dom';
import { MessageView, type MessageActions } from './message-view';

/** What the composer's controls do. */
export interface ComposerActions extends MessageActions {
  send(text: string): void;
  stop(): void;
}

/** The chat column. */
export class ChatView {
  readonly element: HTMLElement;
  readonly input = el('textarea', { id: 'chat-input', rows: 2, placeholder: 'Message the model…  (Enter to send, Shift+Enter for a new line)' });
  private readonly title = el('h2', { id: 'chat-title', className: 'chat-title', textContent: 'New chat' });
  private readonly messages = el('div', { id: 'messages', className: 'messages', role: 'log', ariaLive: 'polite' });
  private readonly empty = el('p', { className: 'empty-state' });
  private readonly sendButton = el('button', { id: 'send', type: 'submit', className: 'primary', textContent: 'Send' });
  private readonly stopButton = el('button', { id: 'stop', type: 'button', textContent: 'Stop', disabled: true });
  private readonly stats = el('span', { id: 'gen-stats', className: 'gen-stats' });
  private readonly views = new Map<string, MessageView>();
  private chat: ChatRecord | null = null;
  private busy = false;
  private frame = 0;
  private dirty = new Set<string>();
  private live = new Map<string, number>();
  format: 'markdown' | 'text' = 'markdown';

  constructor(
    private readonly actions: ComposerActions,
    banner: HTMLElement,
  ) {
    const form = el('form', { id: 'composer', className: 'composer' }, this.input, el('div', { className: 'composer-row' }, this.stats, this.stopButton, this.sendButton));
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const text = this.input.value;
      if (!text.trim() || this.busy) return;
      this.actions.send(text);
    };
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    this.stopButton.onclick = () => this.actions.stop();
    this.element = el('section', { id: 'chat-panel', className: 'app-chat' }, el('div', { className: 'chat-head' }, this.title), banner, this.messages, form);
    this.setEmptyText('Load a model from the Model panel, then say something.');
  }

  /** The text shown in an empty chat. */
  setEmptyText(text: string): void {
    this.empty.textContent = text;
  }

  /** Show a chat (replacing the transcript). */
  show(chat: ChatRecord): void {
    this.chat = chat;
    this.views.clear();
    this.messages.replaceChildren();
    for (const e of chat.messages) this.add(e, false);
    this.refreshAll();
    this.scrollToEnd(true);
  }

  /** The chat on screen. */
  get current(): ChatRecord | null {
    return this.chat;
  }

  /** Append an entry of the chat on screen. */
  add(entry: ChatEntry, refresh = true): void {
    const view = new MessageView(entry, this.actions);
    this.views.set(entry.id, view);
    this.messages.append(view.element);
    if (refresh) this.refreshAll();
    this.scrollToEnd(true);
  }

  /** Redraw one entry at the next frame (streaming); `liveTokensPerSecond` for its meta line. */
  touch(entry: ChatEntry, liveTokensPerSecond?: number): void {
    if (liveTokensPerSecond !== undefined) this.live.set(entry.id, liveTokensPerSecond);
    this.dirty.add(entry.id);
    this.frame ||= requestAnimationFrame(() => this.flush());
  }

  /** Redraw every entry now (after a turn, a format change, a busy change). */
  refreshAll(): void {
    const chat = this.chat;
    if (!chat) return;
    const lastReply = lastReplyOf(chat);
    for (const e of chat.messages) this.views.get(e.id)?.update(this.format, e === lastReply, this.live.get(e.id));
    this.title.textContent = chat.title;
    if (chat.messages.length === 0) this.messages.append(this.empty);
    else this.empty.remove();
  }

  /** Mark Send/Stop for a running generation. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
    this.refreshAll();
  }

  /** The live generation line next to the buttons. */
  setStats(text: string): void {
    this.stats.textContent = text;
  }

  /** Put the reply's token ids and exact decode speed on its element (tests compare them with golden ids, benchmarks read the speed). */
  setResultData(entryId: string, ids: number[], decodeTokensPerSecond: number): void {
    const view = this.views.get(entryId);
    if (!view) return;
    view.element.dataset.tokenIds = ids.join(',');
    view.element.dataset.decodeTps = String(decodeTokensPerSecond);
  }

  private flush(): void {
    this.frame = 0;
    const chat = this.chat;
    if (!chat) return;
    const nearEnd = this.isNearEnd();
    const lastReply = lastReplyOf(chat);
    for (const id of this.dirty) {
      const e = chat.messages.find((m) => m.id === id);
      if (e) this.views.get(id)?.update(this.format, e === lastReply, this.live.get(id));
    }
    this.dirty.clear();
    if (nearEnd) this.scrollToEnd(false);
  }

  private isNearEnd(): boolean {
    const m = this.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  private scrollToEnd(force: boolean): void {
    if (force || this.isNearEnd()) this.messages.scrollTop = this.messages.scrollHeight;
  }
}

function lastReplyOf(chat: ChatRecord): ChatEntry | undefined {
  for (let i = chat.messages.length - 1; i >= 0; i--) if (chat.messages[i].role === 'assistant') return chat.messages[i];
  return undefined;
}
