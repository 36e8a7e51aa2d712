/**
 * The banner shown when the engine worker died (WorkerCrashedError from src/worker/client.ts): what happened,
 * that the chat is kept, and a Restart engine button that starts a fresh worker and loads the last model again.
 */
import type { WorkerCrashedError } from '../errors';
import { el, errorText } from './dom';

/** The banner's words. */
export const CRASH_TEXT = 'The engine stopped unexpectedly. Your chat is kept.';

/** The crash banner; hidden until `show`. */
export class EngineCrashBanner {
  readonly element: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly button: HTMLButtonElement;

  /** `restart` restarts the engine and reloads the model; it resolves false when the reload failed. */
  constructor(restart: () => Promise<boolean>) {
    this.button = el('button', { id: 'restart-engine', type: 'button', className: 'banner-action', textContent: 'Restart engine' });
    this.detail = el('small', { className: 'banner-detail' });
    this.element = el('div', { id: 'engine-crashed', className: 'banner error', role: 'alert', hidden: true }, el('span', {}, CRASH_TEXT), ' ', this.button, this.detail);
    this.button.onclick = async () => {
      this.button.disabled = true;
      this.detail.textContent = 'Restarting the engine and loading the model again…';
      const ok = await restart().catch(() => false);
      this.button.disabled = false;
      if (ok) this.hide();
      else this.detail.textContent = 'The engine restarted, but the model did not load (see the Model panel). Press Restart engine to try again.';
    };
  }

  /** Say the engine stopped, and why. */
  show(err: WorkerCrashedError): void {
    this.detail.textContent = errorText(err);
    this.button.disabled = false;
    this.element.hidden = false;
  }

  /** The engine runs again. */
  hide(): void {
    this.element.hidden = true;
    this.detail.textContent = '';
  }
}
