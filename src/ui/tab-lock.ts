/**
 * Tabs of the app share one GPU. The tab whose engine loads or holds a model holds the Web Lock `kvtab-engine`,
 * so a second tab can tell before it loads a second copy of a model into GPU memory, and say so with a
 * "Load anyway" button. The lock goes when the tab closes. Where there are no Web Locks, every tab loads freely.
 * (Cache writes have their own lock per model, in storage/weight-cache.ts.)
 */
import { el } from './dom';

/** Name of the Web Lock the tab holding the engine keeps. */
export const ENGINE_LOCK = 'kvtab-engine';

/** What a second tab says before it loads. */
export const OTHER_TAB_NOTICE = 'kvtab is open in another tab; loading here would use a second copy of the model in GPU memory.';

/** The Web Locks API, or undefined where the browser has none. */
function locks(): LockManager | undefined {
  return (globalThis.navigator as Navigator | undefined)?.locks;
}

/** The engine lock of this tab. */
export class TabLock {
  private held = false;
  private asked = false;
  private release: (() => void) | null = null;

  constructor(private readonly lockManager: LockManager | undefined = locks()) {}

  /** Whether another tab holds the engine now (false once this tab holds or asked for it, or with no Web Locks). */
  async otherTabHolds(): Promise<boolean> {
    if (this.asked || !this.lockManager) return false;
    const state = await this.lockManager.query();
    return (state.held ?? []).some((l) => l.name === ENGINE_LOCK);
  }

  /**
   * Hold the engine lock from now until the tab closes (or `drop()`). When another tab holds it ("Load anyway"),
   * the request waits in line, so this tab takes over once that one closes.
   */
  hold(): void {
    if (this.asked || !this.lockManager) return;
    this.asked = true;
    void this.lockManager
      .request(ENGINE_LOCK, () => {
        this.held = true;
        return new Promise<void>((resolve) => (this.release = resolve));
      })
      .catch(() => {});
  }

  /** Let the lock go (nothing is loaded here after all). */
  drop(): void {
    this.release?.();
    this.release = null;
    this.held = false;
    this.asked = false;
  }
}

/** The notice a second tab shows, with its "Load anyway" button. */
export function tabNotice(): { element: HTMLElement; show(loadAnyway: () => void): void; hide(): void } {
  const button = el('button', { id: 'tab-load-anyway', type: 'button', className: 'mm-button', textContent: 'Load anyway' });
  const element = el('p', { id: 'tab-notice', className: 'mm-warning', role: 'status', hidden: true }, OTHER_TAB_NOTICE, ' ', button);
  return {
    element,
    show(loadAnyway) {
      element.hidden = false;
      button.onclick = () => {
        element.hidden = true;
        loadAnyway();
      };
      element.scrollIntoView({ block: 'nearest' });
    },
    hide() {
      element.hidden = true;
      button.onclick = null;
    },
  };
}
