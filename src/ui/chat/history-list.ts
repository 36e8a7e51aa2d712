/**
 * The sidebar: New chat, and the stored chats (most recent first) with their dates and a delete button.
 */
import type { ChatRecord } from '../../storage/chat-history';
import { el } from '../dom';

/** What the list's controls do. */
export interface HistoryActions {
  newChat(): void;
  open(id: string): void;
  remove(id: string): void;
}

/** The sidebar. */
export class HistoryList {
  readonly element: HTMLElement;
  private readonly list = el('ul', { id: 'chat-list', className: 'chat-list' });

  constructor(private readonly actions: HistoryActions) {
    const newButton = el('button', { id: 'new-chat', type: 'button', className: 'primary', textContent: '+ New chat' });
    newButton.onclick = () => this.actions.newChat();
    this.element = el('aside', { id: 'chat-sidebar', className: 'app-side' }, el('div', { className: 'side-head' }, el('h2', {}, 'Chats'), newButton), this.list);
  }

  /** Draw the chats; `currentId` is highlighted. */
  render(chats: readonly ChatRecord[], currentId: string | null): void {
    this.list.replaceChildren(
      ...chats.map((c) => {
        const open = el('button', { type: 'button', className: 'chat-open', title: c.title }, el('span', { className: 'chat-name' }, c.title), el('small', {}, describe(c)));
        open.onclick = () => this.actions.open(c.id);
        const remove = el('button', { type: 'button', className: 'chat-delete', title: `Delete “${c.title}”`, ariaLabel: `Delete chat ${c.title}`, textContent: '×' });
        remove.onclick = () => this.actions.remove(c.id);
        const item = el('li', { className: 'chat-item', dataset: { id: c.id } }, open, remove);
        if (c.id === currentId) item.setAttribute('aria-current', 'true');
        return item;
      }),
    );
  }
}

function describe(c: ChatRecord): string {
  const n = c.messages.filter((m) => m.role !== 'notice').length;
  const when = new Date(c.updatedAt);
  const sameDay = when.toDateString() === new Date().toDateString();
  const time = sameDay ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : when.toLocaleDateString();
  return `${n} message${n === 1 ? '' : 's'} · ${time}`;
}
