/**
 * Group commit: items handed in one at a time, written or read in groups by
 * one statement each, one statement at a time. Everything that arrives in
 * the same turn of the event loop, or while a statement runs, goes in the
 * next one (up to `max`): quiet, a statement an item; busy — PGlite's one
 * thread taken, or PostgreSQL slow to answer — a statement for dozens, so
 * the cost per item falls as the load rises instead of queueing statements.
 * `gapMs` leaves that long between statements, so that a trickle of items
 * gathers into groups too, and whatever else waits for the database gets
 * in between.
 */
export class GroupCommit<In, Out> {
  readonly #run: (items: readonly In[]) => Promise<readonly Out[]>;
  readonly #max: number;
  readonly #gapMs: number;
  #queue: { item: In; resolve: (out: Out) => void; reject: (error: unknown) => void }[] = [];
  #draining = false;

  /** `run` answers one output per item, in the items' order; a throw fails the whole group. */
  constructor(run: (items: readonly In[]) => Promise<readonly Out[]>, options: { max: number; gapMs?: number }) {
    this.#run = run;
    this.#max = options.max;
    this.#gapMs = options.gapMs ?? 0;
  }

  add(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#draining) return;
      this.#draining = true;
      setImmediate(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue.splice(0, this.#max);
        try {
          const outs = await this.#run(group.map((entry) => entry.item));
          group.forEach((entry, i) => entry.resolve(outs[i]!));
        } catch (error) {
          for (const entry of group) entry.reject(error);
        }
        if (this.#gapMs > 0 && this.#queue.length < this.#max) await new Promise((resolve) => setTimeout(resolve, this.#gapMs));
      }
    } finally {
      this.#draining = false;
    }
  }
}
