import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for what the vault makes on every request (ids, IVs, each
 * card's own key), drawn from a pool refilled 4 KB at a time. A
 * `randomBytes` call costs ~4–7 µs however few bytes it returns, and a
 * tokenization made five or six of them: ~6 % of the main thread's time at
 * c=32 (docs/decisions.md, "Randomness on the request path from a pool").
 * Node pools `randomUUID`'s bytes the same way. The bytes come from the
 * same CSPRNG; each is handed out once, and wiped from the pool as it is
 * handed out, so the pool never holds a copy of a key that was used. Keys
 * made rarely (master, merchant, transport) keep calling `randomBytes`.
 */
const POOL_BYTES = 4096;
/** Larger requests skip the pool. */
const MAX_POOLED = 64;

const pool = Buffer.alloc(POOL_BYTES);
let next = POOL_BYTES;

export function pooledRandomBytes(size: number): Buffer {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`cannot make ${size} random bytes`);
  const out = Buffer.allocUnsafeSlow(size);
  if (size > MAX_POOLED) return randomFillSync(out);
  if (next + size > POOL_BYTES) {
    randomFillSync(pool);
    next = 0;
  }
  pool.copy(out, 0, next, next + size);
  pool.fill(0, next, next + size);
  next += size;
  return out;
}
