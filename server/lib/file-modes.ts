import { chmodSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface ModeChange {
  path: string;
  /** The mode it had, in octal (`0644`). */
  was: string;
}

const DIRECTORY_MODE = 0o700;
const FILE_MODE = 0o600;

/**
 * Makes `path` reachable by its owner only: a directory 0700 (and, with
 * `recursive`, everything in it), a regular file 0600. The owner keeps read
 * and write, so the vault (and PGlite, in the same process) still opens its
 * files. Symbolic links are never followed, so a link cannot make this change
 * a file outside. A path that does not exist is skipped. Returns what changed.
 */
export function restrictToOwner(path: string, options: { recursive?: boolean } = {}): ModeChange[] {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const changes: ModeChange[] = [];
  const wanted = stats.isDirectory() ? DIRECTORY_MODE : stats.isFile() ? FILE_MODE : undefined;
  if (wanted === undefined) return changes;
  if ((stats.mode & 0o777) !== wanted) {
    chmodSync(path, wanted);
    changes.push({ path, was: `0${(stats.mode & 0o777).toString(8)}` });
  }
  if (stats.isDirectory() && options.recursive) {
    for (const name of readdirSync(path)) changes.push(...restrictToOwner(join(path, name), options));
  }
  return changes;
}
