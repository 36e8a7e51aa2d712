/**
 * Chats persisted in IndexedDB through idb-keyval: one record per chat (messages, notices, cache-meter samples).
 * Saves are throttled while tokens stream; a synchronous localStorage copy written on `pagehide` covers the
 * last throttle interval, so a reload mid-generation loses nothing that was already on screen.
 */
import { createStore, del, get, set, values, type UseStore } from 'idb-keyval';
import type { FinishReason } from '../worker/api';

/** One line of a chat transcript. Notices are the app talking (budget, mode changes, errors); they are never sent to the model. */
export interface ChatEntry {
  id: string;
  role: 'user' | 'assistant' | 'notice';
  content: string;
  createdAt: number;
  /** Assistant replies: streaming → done | stopped | error; `interrupted` when a reload cut the stream. */
  status?: 'streaming' | 'done' | 'stopped' | 'interrupted' | 'error';
  finishReason?: FinishReason;
  tokens?: number;
  tokensPerSecond?: number;
  /** KV mode the reply was generated in. */
  kvMode?: string;
  /** Notices: how loud to show them. */
  level?: 'info' | 'warning' | 'error';
}

/** One point of the cache meter's bytes-vs-tokens series. */
export interface MeterSample {
  tokens: number;
  bytes: number;
  fp16: number;
}

/** A stored chat. */
export interface ChatRecord {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: ChatEntry[];
  /** Cache meter samples over the chat (thinned to at most MAX_SAMPLES). */
  samples: MeterSample[];
  /** The model the chat was last used with. */
  modelLabel?: string;
}

/** Most meter samples stored per chat. */
export const MAX_SAMPLES = 600;
const CURRENT_KEY = 'kvtab.currentChat';
const PENDING_KEY = 'kvtab.pendingChat';

/** A fresh id (time-ordered, random suffix). */
export function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** An empty chat. */
export function newChat(): ChatRecord {
  const now = Date.now();
  return { id: newId(), title: 'New chat', createdAt: now, updatedAt: now, messages: [], samples: [] };
}

/** The title of a chat: the start of its first user message. */
export function chatTitle(chat: ChatRecord): string {
  const first = chat.messages.find((m) => m.role === 'user')?.content.trim().replace(/\s+/g, ' ');
  if (!first) return 'New chat';
  return first.length > 48 ? `${first.slice(0, 47)}…` : first;
}

/** Replies left streaming by a reload are marked interrupted (their text so far is kept). */
function settle(chat: ChatRecord): ChatRecord {
  for (const m of chat.messages) if (m.status === 'streaming') m.status = 'interrupted';
  chat.samples ??= [];
  return chat;
}

/** The chat store. */
export class ChatHistory {
  private readonly store: UseStore;

  constructor(store?: UseStore) {
    this.store = store ?? createStore('kvtab-chats', 'chats');
  }

  /** Every chat, most recently updated first. */
  async list(): Promise<ChatRecord[]> {
    const all = (await values<ChatRecord>(this.store)).map(settle);
    return all.sort((a, b) => b.updatedAt - a.updatedAt);
  }

  /** One chat, or undefined. */
  async get(id: string): Promise<ChatRecord | undefined> {
    const chat = await get<ChatRecord>(id, this.store);
    return chat && settle(chat);
  }

  /** Store a chat (a structured clone of it). */
  async save(chat: ChatRecord): Promise<void> {
    await set(chat.id, chat, this.store);
  }

  /** Delete a chat. */
  async remove(id: string): Promise<void> {
    await del(id, this.store);
  }

  /** The chat that was open last. */
  get currentId(): string | null {
    return localStorage.getItem(CURRENT_KEY);
  }

  set currentId(id: string | null) {
    if (id) localStorage.setItem(CURRENT_KEY, id);
    else localStorage.removeItem(CURRENT_KEY);
  }

  /** Synchronous copy of a chat whose save may not have landed yet (called on pagehide). */
  backupPending(chat: ChatRecord): void {
    try {
      localStorage.setItem(PENDING_KEY, JSON.stringify(chat));
    } catch {
      // Quota exceeded: the throttled IndexedDB save is all there is.
    }
  }

  /** Fold a pagehide backup into the store when it is newer than the stored chat. */
  async recoverPending(): Promise<void> {
    const raw = localStorage.getItem(PENDING_KEY);
    if (!raw) return;
    try {
      const backup = JSON.parse(raw) as ChatRecord;
      const stored = await this.get(backup.id);
      if (!stored || backup.updatedAt >= stored.updatedAt) await this.save(settle(backup));
    } catch {
      // A damaged backup is dropped; the stored chat stands.
    }
    localStorage.removeItem(PENDING_KEY);
  }
}

/**
 * Saves a chat at most once per `intervalMs` while it changes (tokens streaming), and on flush().
 * Knows which chat has unsaved changes so pagehide can back it up synchronously.
 */
export class ThrottledSaver {
  private pending: ChatRecord | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly history: ChatHistory,
    private readonly intervalMs = 250,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Note that `chat` changed; it is written within `intervalMs`. */
  schedule(chat: ChatRecord): void {
    if (this.pending && this.pending !== chat) void this.flush();
    this.pending = chat;
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Write the pending chat now. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const chat = this.pending;
    this.pending = null;
    if (chat) this.writing = this.writing.then(() => this.history.save(chat)).catch(this.onError);
    return this.writing;
  }

  /** The chat with changes not yet written, if any. */
  get unsaved(): ChatRecord | null {
    return this.pending;
  }
}

/** Append a meter sample, thinning the series (every other point) when it grows past MAX_SAMPLES. */
export function addSample(chat: ChatRecord, sample: MeterSample): void {
  const last = chat.samples[chat.samples.length - 1];
  if (last && last.tokens === sample.tokens && last.bytes === sample.bytes) return;
  chat.samples.push(sample);
  if (chat.samples.length > MAX_SAMPLES) chat.samples = chat.samples.filter((_, i) => i % 2 === 0 || i === chat.samples.length - 1);
}
