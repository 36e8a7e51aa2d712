/**
 * What the engine is asked to continue for a chat: a chat-template conversation (system prompt first), or,
 * for base models without a template, the transcript as one plain text to continue. Notices and failed empty
 * replies are never sent. Pure, so it is tested in Node.
 */
import type { ChatEntry } from '../../storage/chat-history';
import type { ChatMessage } from '../../worker/api';
import type { AppSettings } from '../settings/settings-store';

/** The format a chat uses with a model. */
export function promptFormatFor(settings: Pick<AppSettings, 'promptFormat'>, hasChatTemplate: boolean): 'chat' | 'completion' {
  if (settings.promptFormat === 'auto') return hasChatTemplate ? 'chat' : 'completion';
  return settings.promptFormat;
}

/** The engine input for the conversation `entries` (the reply being generated is not among them). */
export function buildPrompt(entries: readonly ChatEntry[], settings: Pick<AppSettings, 'promptFormat' | 'systemPrompt'>, hasChatTemplate: boolean): string | ChatMessage[] {
  const turns = entries.filter((e): e is ChatEntry & { role: 'user' | 'assistant' } => e.role !== 'notice' && !(e.role === 'assistant' && e.content === ''));
  if (promptFormatFor(settings, hasChatTemplate) === 'completion') return turns.map((e) => e.content).join('');
  const messages: ChatMessage[] = [];
  if (settings.systemPrompt.trim()) messages.push({ role: 'system', content: settings.systemPrompt });
  for (const e of turns) messages.push({ role: e.role, content: e.content });
  return messages;
}
