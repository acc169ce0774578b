import { expect, vi } from 'vitest';

/**
 * The per-minute limits count in clock minutes: a check whose requests must
 * fall in one waits until at least `seconds` of the current minute are left.
 */
export async function windowWithSecondsLeft(seconds: number): Promise<void> {
  await vi.waitFor(() => expect(60_000 - (Date.now() % 60_000), 'ms left in this minute').toBeGreaterThan(seconds * 1000), {
    timeout: (seconds + 1) * 1000,
    interval: 100,
  });
}
