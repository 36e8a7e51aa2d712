/**
 * Records in every store of every IndexedDB database of this origin, by "db/store". Self-contained (no
 * imports, no outer names), so Playwright can also run it in a page: `page.evaluate(idbRecordCounts)`.
 */
export async function idbRecordCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const info of await indexedDB.databases()) {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(info.name as string);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    for (const store of [...db.objectStoreNames]) {
      out[`${db.name}/${store}`] = await new Promise<number>((resolve, reject) => {
        const req = db.transaction(store, 'readonly').objectStore(store).count();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    db.close();
  }
  return out;
}
