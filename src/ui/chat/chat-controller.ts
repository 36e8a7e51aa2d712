/**
 * The chat's behaviour: send, stream (text, tokens/s, cache meter), stop, regenerate, edit-and-resend,
 * new/open/delete chats, notices, and persistence of every change (throttled while tokens stream).
 * Replies go through the library's OpenAI-shaped API (reply-stream.ts), as other apps' do.
 */
import { addSample, chatTitle, newChat, newId, ThrottledSaver, type ChatEntry, type ChatHistory, type ChatRecord } from '../../storage/chat-history';
import type { KvtabEngine } from '../../lib/engine';
import type { ContextEvent, EngineStats, GenerateResult, KvModeSpec, ModelInfo, TokenEvent } from '../../worker/api';
import { errorText } from '../dom';
import type { CacheMeter } from '../meter/cache-meter';
import { specName } from '../settings/kv-modes';
import { budgetOf, generateParams, type AppSettings } from '../settings/settings-store';
import { ChatView } from './chat-view';
import { HistoryList } from './history-list';
import { describeContextEvent, describeModeSwitch } from './notices';
import { buildPrompt, promptFormatFor } from './prompt';
import { streamReply } from './reply-stream';

/** What the controller needs from the app. */
export interface ChatDeps {
  engine: KvtabEngine;
  settings: AppSettings;
  history: ChatHistory;
  meter: CacheMeter;
  banner: HTMLElement;
  /** The engine moved to a stronger mode on its own (auto escalation): reflect it in the settings. */
  onKvEscalated(spec: KvModeSpec): void;
  /** Show the chat column (phones show one panel at a time). */
  showChatView(): void;
}

interface Turn {
  chat: ChatRecord;
  entry: ChatEntry;
}

/** The chat controller; owns the chat view and the history list. */
export class ChatController {
  readonly view: ChatView;
  readonly list: HistoryList;
  private chats: ChatRecord[] = [];
  private chat: ChatRecord = newChat();
  private model: ModelInfo | null = null;
  private turn: Turn | null = null;
  private engineBusy = false;
  private pendingKv: KvModeSpec | null = null;
  private readonly saver: ThrottledSaver;

  constructor(private readonly deps: ChatDeps) {
    this.saver = new ThrottledSaver(deps.history, 250, (err) => console.warn('Saving the chat failed:', err));
    this.view = new ChatView(
      {
        send: (text) => void this.send(text),
        stop: () => void this.deps.engine.interruptGenerate(),
        regenerate: () => void this.regenerate(),
        editAndResend: (id, text) => void this.editAndResend(id, text),
        canAct: () => this.canGenerate(),
      },
      deps.banner,
    );
    this.list = new HistoryList({ newChat: () => void this.newChat(), open: (id) => void this.open(id), remove: (id) => void this.remove(id) });
    deps.meter.onSample = (s) => {
      const target = this.turn?.chat ?? this.chat;
      addSample(target, s);
      return target.samples;
    };
    // A reload or tab close in the middle of a reply: keep what is on screen.
    addEventListener('pagehide', () => {
      const chat = this.saver.unsaved ?? this.turn?.chat;
      if (chat) deps.history.backupPending(chat);
    });
  }

  /** Restore the stored chats and open the last one. */
  async init(): Promise<void> {
    const h = this.deps.history;
    try {
      await h.recoverPending();
      this.chats = await h.list();
    } catch (err) {
      this.chats = [];
      this.deps.banner.append(`Saved chats could not be read (${errorText(err)}); new chats may not be kept.`);
      this.deps.banner.hidden = false;
    }
    this.chat = this.chats.find((c) => c.id === h.currentId) ?? this.chats[0] ?? newChat();
    this.showCurrent();
  }

  /** A model finished loading (null: unloaded or failed). */
  setModel(info: ModelInfo | null): void {
    this.model = info;
    if (info) {
      const format = promptFormatFor(this.deps.settings, info.hasChatTemplate);
      this.view.setEmptyText(
        format === 'chat'
          ? `${info.label} is ready. Say something.`
          : `${info.label} has no chat template: it continues the text you write (try “Once upon a time”).`,
      );
    }
    this.view.refreshAll();
  }

  /** The engine is loading a model (Send waits). */
  setEngineBusy(busy: boolean): void {
    this.engineBusy = busy;
    this.view.refreshAll();
  }

  /** Whether a reply is being generated. */
  get generating(): boolean {
    return this.turn !== null;
  }

  /** The chat on screen. */
  get current(): ChatRecord {
    return this.chat;
  }

  /** Add a notice to the open chat. */
  notice(text: string, level: ChatEntry['level'] = 'info', chat: ChatRecord = this.chat): void {
    const entry: ChatEntry = { id: newId(), role: 'notice', content: text, createdAt: Date.now(), level };
    chat.messages.push(entry);
    if (chat === this.chat) this.view.add(entry);
    this.changed(chat, true);
  }

  /** Redraw replies in the current output format. */
  refreshFormat(): void {
    this.view.format = this.deps.settings.outputFormat;
    this.view.refreshAll();
  }

  /** Apply a KV mode to the loaded model mid-chat (after the running reply, if any). */
  async applyKv(spec: KvModeSpec): Promise<EngineStats | null> {
    if (!this.model) return null;
    if (this.turn) {
      this.pendingKv = spec;
      return null;
    }
    const kv = this.deps.engine.kv;
    const before = await kv.stats();
    const after = await kv.setMode(spec);
    this.deps.meter.update(after);
    if (before.kvMode !== after.kvMode || before.kvBytes !== after.kvBytes) {
      this.notice(describeModeSwitch(before.kvMode, after.kvMode, before.kvBytes, after.kvBytes, after.tokensHeld));
    }
    return after;
  }

  private canGenerate(): boolean {
    return !this.turn && !this.engineBusy;
  }

  /** Send a user message and stream the reply. */
  async send(text: string): Promise<void> {
    if (this.engineBusy) {
      this.notice('A model is loading; send again when it is ready (your message is still in the box).', 'info');
      return;
    }
    if (!this.canGenerate()) return;
    if (!this.model) {
      this.notice('No model is loaded yet. Pick one in the Model panel (or press the offline demo button), then send again.', 'warning');
      return;
    }
    this.view.input.value = '';
    const entry: ChatEntry = { id: newId(), role: 'user', content: text, createdAt: Date.now() };
    this.chat.messages.push(entry);
    this.view.add(entry);
    this.changed(this.chat, true);
    await this.reply(this.chat);
  }

  /** Generate the last reply again. */
  async regenerate(): Promise<void> {
    if (!this.canGenerate()) return;
    if (!this.model) {
      this.notice('No model is loaded: load one, then press Regenerate again.', 'warning');
      return;
    }
    const msgs = this.chat.messages;
    const lastUser = msgs.map((m) => m.role).lastIndexOf('user');
    if (lastUser < 0) return;
    // The old reply (and notices about it) go; the new one takes its place.
    this.chat.messages = msgs.slice(0, lastUser + 1);
    this.view.show(this.chat);
    await this.reply(this.chat);
  }

  /** Replace a user message, drop everything after it, and reply again. */
  async editAndResend(entryId: string, text: string): Promise<void> {
    if (!this.canGenerate()) return;
    const i = this.chat.messages.findIndex((m) => m.id === entryId);
    if (i < 0) return;
    const edited: ChatEntry = { ...this.chat.messages[i], content: text, createdAt: Date.now() };
    this.chat.messages = [...this.chat.messages.slice(0, i), edited];
    this.view.show(this.chat);
    this.changed(this.chat, true);
    if (!this.model) {
      this.notice('No model is loaded yet: the edit is saved; load a model and press Regenerate.', 'warning');
      return;
    }
    await this.reply(this.chat);
  }

  /** Start a new chat. */
  async newChat(): Promise<void> {
    if (this.chat.messages.length === 0) {
      this.deps.showChatView();
      return;
    }
    await this.saver.flush();
    this.chat = newChat();
    this.showCurrent();
  }

  /** Open a stored chat. */
  async open(id: string): Promise<void> {
    const chat = this.chats.find((c) => c.id === id);
    if (!chat) return;
    await this.saver.flush();
    this.chat = chat;
    this.showCurrent();
  }

  /** Delete a chat (stopping its reply first). */
  async remove(id: string): Promise<void> {
    if (this.turn?.chat.id === id) await this.deps.engine.interruptGenerate();
    this.chats = this.chats.filter((c) => c.id !== id);
    await this.deps.history.remove(id).catch(() => {});
    if (this.chat.id === id) this.chat = this.chats[0] ?? newChat();
    this.showCurrent();
  }

  private showCurrent(): void {
    this.deps.history.currentId = this.chat.messages.length ? this.chat.id : null;
    this.view.format = this.deps.settings.outputFormat;
    this.view.show(this.chat);
    this.view.setStats('');
    this.deps.meter.setSamples(this.chat.samples);
    this.list.render(this.chats, this.chat.id);
    this.deps.showChatView();
  }

  /** Note a change: title, time, list order, and a (throttled) save. */
  private changed(chat: ChatRecord, structural: boolean): void {
    chat.updatedAt = Date.now();
    // A chat with nothing but app notices (e.g. "no model loaded") is not worth keeping.
    if (!chat.messages.some((m) => m.role !== 'notice')) return;
    if (structural) {
      chat.title = chatTitle(chat);
      if (!this.chats.includes(chat)) this.chats.unshift(chat);
      this.chats.sort((a, b) => b.updatedAt - a.updatedAt);
      this.list.render(this.chats, this.chat.id);
      if (chat === this.chat) this.deps.history.currentId = chat.id;
    }
    this.saver.schedule(chat);
  }

  /** Stream the model's reply to `chat`. */
  private async reply(chat: ChatRecord): Promise<void> {
    const model = this.model as ModelInfo;
    const settings = this.deps.settings;
    const input = buildPrompt(chat.messages, settings, model.hasChatTemplate);
    const entry: ChatEntry = { id: newId(), role: 'assistant', content: '', createdAt: Date.now(), status: 'streaming', tokens: 0 };
    chat.messages.push(entry);
    this.view.add(entry);
    this.turn = { chat, entry };
    this.view.setBusy(true);
    this.changed(chat, true);
    this.deps.meter.setBudget(budgetOf(settings)?.bytes ?? null);

    let firstTokenAt = 0;
    const onToken = (t: TokenEvent) => {
      if (t.tokenId >= 0) entry.tokens = (entry.tokens ?? 0) + 1;
      entry.content += t.text;
      const now = performance.now();
      firstTokenAt ||= now;
      const n = entry.tokens ?? 0;
      const tps = n > 1 ? ((n - 1) * 1000) / (now - firstTokenAt) : undefined;
      if (t.stats) {
        this.deps.meter.update(t.stats, true);
        entry.kvMode = t.stats.kvMode;
      }
      if (chat === this.chat) {
        this.view.touch(entry, tps);
        this.view.setStats(`${n} tokens${tps ? ` · ${tps.toFixed(1)} tok/s` : ''}`);
      }
      this.changed(chat, false);
    };
    // Slides during one reply update one notice instead of adding one per slide (protected tokens lost in any count).
    let slides: { notice: ChatEntry; times: number; dropped: number; protectedDropped: number } | null = null;
    const onContext = (e: ContextEvent) => {
      if (e.kind === 'window' && e.at === 'decode' && slides) {
        slides.times++;
        slides.dropped += e.droppedTokens;
        slides.protectedDropped += e.protectedDropped;
        slides.notice.content = describeContextEvent({ ...e, protectedDropped: slides.protectedDropped }, slides);
        if (chat === this.chat) this.view.touch(slides.notice);
        this.changed(chat, false);
        return;
      }
      const notice = this.insertNotice(chat, entry, describeContextEvent(e));
      if (e.kind === 'window' && e.at === 'decode') slides = { notice, times: 1, dropped: e.droppedTokens, protectedDropped: e.protectedDropped };
      if (e.kind === 'escalate' || e.kind === 'step-down') this.deps.onKvEscalated(e.spec);
    };
    let result: GenerateResult | null = null;
    try {
      result = await streamReply(this.deps.engine, input, generateParams(settings, promptFormatFor(settings, model.hasChatTemplate) === 'chat'), onToken, onContext);
      entry.status = result.finishReason === 'abort' ? 'stopped' : 'done';
      entry.finishReason = result.finishReason;
      entry.tokens = result.tokenIds.length;
      entry.tokensPerSecond = result.decodeTokensPerSecond || undefined;
    } catch (err) {
      entry.status = 'error';
      this.notice(`The reply failed: ${errorText(err)}`, 'error', chat);
    } finally {
      this.turn = null;
      await this.afterTurn(chat, entry, result);
    }
  }

  /** Notices that arrive while a reply streams go just before the reply, so the reply stays last. */
  private insertNotice(chat: ChatRecord, before: ChatEntry, text: string): ChatEntry {
    const notice: ChatEntry = { id: newId(), role: 'notice', content: text, createdAt: Date.now(), level: 'warning' };
    chat.messages.splice(chat.messages.indexOf(before), 0, notice);
    if (chat === this.chat) this.view.show(chat);
    this.changed(chat, true);
    return notice;
  }

  private async afterTurn(chat: ChatRecord, entry: ChatEntry, result: GenerateResult | null): Promise<void> {
    try {
      const stats = await this.deps.engine.kv.stats();
      this.deps.meter.update(stats);
      if (stats.loaded) entry.kvMode = stats.kvMode;
    } catch {
      // The engine is gone (device lost): the error notice already says so.
    }
    if (chat === this.chat) {
      if (result) this.view.setResultData(entry.id, result.tokenIds, result.decodeTokensPerSecond);
      this.view.setStats(result ? `${result.tokenIds.length} tokens · ${result.decodeTokensPerSecond.toFixed(1)} tok/s · prefill ${result.prefillTokensPerSecond.toFixed(0)} tok/s` : '');
    }
    this.view.setBusy(false);
    this.changed(chat, true);
    await this.saver.flush();
    const pending = this.pendingKv;
    this.pendingKv = null;
    if (pending) {
      await this.applyKv(pending).catch((err) => this.notice(`Switching to ${specName(pending)} failed: ${errorText(err)}`, 'error'));
    }
  }
}
