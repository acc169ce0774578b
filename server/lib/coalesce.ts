/**
 * Calls that arrive while one is running wait and go together, as the next
 * one: a busy caller makes one statement for many, an idle one waits for
 * nothing (its call runs at once, in the same tick's company). `run` answers
 * one value per input, in order. When a call of several inputs fails, each
 * input is run again on its own, so one bad input fails only its caller.
 * `turn`: gather for the whole turn of the event loop (the I/O callbacks that
 * complete together — e.g. jobs whose cards were opened at once), not just
 * the current tick. `before`: awaited before each group is taken (e.g. until
 * the requests in flight are answered); what arrives meanwhile joins it.
 */
export class Coalescer<In, Out> {
  readonly #run: (inputs: In[]) => Promise<readonly Out[]>;
  readonly #max: number;
  readonly #waiting: { input: In; resolve: (value: Out) => void; reject: (error: unknown) => void }[] = [];
  readonly #turn: boolean;
  readonly #before: (() => Promise<void>) | undefined;
  #running = false;

  constructor(run: (inputs: In[]) => Promise<readonly Out[]>, options: { max: number; turn?: boolean; before?: (() => Promise<void>) | undefined }) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new RangeError('a coalescer needs a max of at least 1');
    this.#run = run;
    this.#max = options.max;
    this.#turn = options.turn ?? false;
    this.#before = options.before;
  }

  /** Calls waiting for the next run (not the one running). */
  get waiting(): number {
    return this.#waiting.length;
  }

  call(input: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ input, resolve, reject });
      if (this.#running) return;
      this.#running = true;
      // After the current tick, so the calls made in it (a claim's jobs starting together) go as one; or after the turn.
      if (this.#turn) setImmediate(() => void this.#drain());
      else queueMicrotask(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0) {
      if (this.#before !== undefined) await this.#before();
      const group = this.#waiting.splice(0, this.#max);
      try {
        const outs = await this.#run(group.map((entry) => entry.input));
        group.forEach((entry, i) => entry.resolve(outs[i]!));
      } catch (error) {
        if (group.length === 1) group[0]!.reject(error);
        else await Promise.all(group.map((entry) => this.#run([entry.input]).then(([out]) => entry.resolve(out!), entry.reject)));
      }
    }
    this.#running = false;
  }
}
