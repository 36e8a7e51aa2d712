/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of byte chunks: the checksum the weight cache stores per
 * chunk, so a damaged IndexedDB record is caught before its bytes reach the GPU. Pure and synchronous, so
 * it works in workers, in Node and on plain-http origins where crypto.subtle is missing.
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes` as an unsigned 32-bit integer; pass a previous result as `seed` to continue over more bytes. */
export function crc32(bytes: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
