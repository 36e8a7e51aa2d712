/**
 * TabLock over a fake LockManager shared by two "tabs": the first holds the engine lock, the second sees it
 * held, and after "Load anyway" its request waits in line and takes over when the first tab lets go.
 */
import { describe, expect, it } from 'vitest';
import { ENGINE_LOCK, TabLock } from '../../src/ui/tab-lock';

/** An exclusive-only LockManager shared by every TabLock made with it (one origin, many tabs). */
function fakeLocks(): LockManager {
  const held: string[] = [];
  const queue: Array<() => void> = [];
  const run = (name: string, fn: () => Promise<unknown>) => {
    held.push(name);
    return fn().finally(() => {
      held.splice(held.indexOf(name), 1);
      queue.shift()?.();
    });
  };
  return {
    query: async () => ({ held: held.map((name) => ({ name, mode: 'exclusive' as const })), pending: [] }),
    request: (async (name: string, fn: () => Promise<unknown>): Promise<unknown> => {
      if (held.includes(name)) await new Promise<void>((resolve) => queue.push(resolve));
      return run(name, fn);
    }) as unknown as LockManager['request'],
  } as LockManager;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('TabLock', () => {
  it('fault: two tabs — the second tab sees the engine held; Load anyway queues it; it takes over when the first tab lets go', async () => {
    const locks = fakeLocks();
    const first = new TabLock(locks);
    const second = new TabLock(locks);
    expect(await first.otherTabHolds()).toBe(false);
    first.hold();
    await tick();
    expect((await locks.query()).held?.map((l) => l.name)).toEqual([ENGINE_LOCK]);
    expect(await first.otherTabHolds()).toBe(false); // its own lock
    expect(await second.otherTabHolds()).toBe(true);
    second.hold(); // Load anyway
    expect(await second.otherTabHolds()).toBe(false); // asked once: no second notice in this tab
    first.drop();
    await tick();
    expect(await first.otherTabHolds()).toBe(true); // now the second tab holds it
  });

  it('fault: two tabs — with no Web Locks every tab loads freely', async () => {
    const tab = new TabLock(undefined);
    expect(await tab.otherTabHolds()).toBe(false);
    tab.hold();
    tab.drop();
  });
});
