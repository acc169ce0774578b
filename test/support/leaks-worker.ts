/**
 * A thread of the leak scan (test/leaks/no-card-data-at-rest.test.ts): takes
 * data folders one at a time from the test, and for each searches its raw
 * files and every text and bytea column of its embedded database, as
 * leaks.ts describes. Opening a PGlite database costs half a second of CPU,
 * and a full run leaves a hundred and more: one thread per core.
 */
import { parentPort } from 'node:worker_threads';
import { dumpTables, filesUnder, scanRawFile, scanTableDump, withPglite, type Finding } from './leaks.ts';

/** What the thread found in one data folder. */
export interface DataFolderScan {
  dir: string;
  rawFiles: number;
  rawFindings: Finding[];
  tokensSeen: number;
  tableFindings: Finding[];
}

/** From the test: the next folder to scan, or null when there are no more. */
export type LeaksWorkerRequest = string | null;
/** To the test: ready for a folder (first message), then each folder's scan, or why it could not be scanned. */
export type LeaksWorkerReply = { ready: true } | { scan: DataFolderScan } | { error: string };

async function scanDataFolder(dir: string): Promise<DataFolderScan> {
  const dataFiles = filesUnder(dir).filter((file) => !file.endsWith('.log') && file.startsWith(`${dir}/`));
  const rawFindings = dataFiles.flatMap(scanRawFile);
  let tokensSeen = 0;
  const tableFindings: Finding[] = [];
  await withPglite(dir, async (query) => {
    for (const dump of await dumpTables(query)) {
      if (dump.table === 'tokens') tokensSeen += dump.values.length;
      tableFindings.push(...scanTableDump(dir, dump));
    }
  });
  return { dir, rawFiles: dataFiles.length, rawFindings, tokensSeen, tableFindings };
}

const port = parentPort!;
port.on('message', (dir: LeaksWorkerRequest) => {
  if (dir === null) {
    port.close();
    return;
  }
  scanDataFolder(dir).then(
    (scan) => port.postMessage({ scan } satisfies LeaksWorkerReply),
    (error: unknown) => port.postMessage({ error: `${dir}: ${error instanceof Error ? error.message : String(error)}` } satisfies LeaksWorkerReply),
  );
});
port.postMessage({ ready: true } satisfies LeaksWorkerReply);
