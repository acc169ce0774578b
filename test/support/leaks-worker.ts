/**
 * A thread of the leak scan (test/leaks/no-card-data-at-rest.test.ts): takes
 * data folders one at a time from the test, and for each searches its raw
 * files and every text and bytea column of its embedded database, as
 * leaks.ts describes. Opening a PGlite database costs a third of a second
 * of CPU even with the scan's small buffer pool (`withPglite`), and a full
 * run leaves a hundred and more: one thread per core.
 */
import { parentPort } from 'node:worker_threads';
import { dumpTables, filesUnder, scanRawFile, scanTableDump, withPglite, writtenSinceCopied, type Finding } from './leaks.ts';

/** What the thread found in one data folder. */
export interface DataFolderScan {
  dir: string;
  rawFiles: number;
  /** Raw files left as the template had them (same size and modification time), so not read again. */
  unchangedFiles: number;
  rawFindings: Finding[];
  tokensSeen: number;
  tableFindings: Finding[];
}

/**
 * From the test: the next folder to scan, with the PGlite templates the
 * suite's databases are copied from (the vault's and the demo shop's;
 * scanned themselves too, as folders of the queue), or null when there are
 * no more.
 */
export type LeaksWorkerRequest = { dir: string; templates: string[] } | null;
/** To the test: ready for a folder (first message), then each folder's scan, or why it could not be scanned. */
export type LeaksWorkerReply = { ready: true } | { scan: DataFolderScan } | { error: string };

async function scanDataFolder(dir: string, templates: string[]): Promise<DataFolderScan> {
  const dataFiles = filesUnder(dir).filter((file) => !file.endsWith('.log') && file.startsWith(`${dir}/`));
  const isTemplate = templates.includes(dir);
  const written = isTemplate ? dataFiles : writtenSinceCopied(dataFiles, dir, templates);
  const rawFindings = written.flatMap(scanRawFile);
  let tokensSeen = 0;
  const tableFindings: Finding[] = [];
  // A template's database is only the migrations (and opening it would write to it): its raw files are what matters.
  if (!isTemplate) {
    await withPglite(dir, async (query) => {
      for (const dump of await dumpTables(query)) {
        if (dump.table === 'tokens') tokensSeen += dump.values.length;
        tableFindings.push(...scanTableDump(dir, dump));
      }
    });
  }
  return { dir, rawFiles: dataFiles.length, unchangedFiles: dataFiles.length - written.length, rawFindings, tokensSeen, tableFindings };
}

const port = parentPort!;
port.on('message', (request: LeaksWorkerRequest) => {
  if (request === null) {
    port.close();
    return;
  }
  const { dir, templates } = request;
  scanDataFolder(dir, templates).then(
    (scan) => port.postMessage({ scan } satisfies LeaksWorkerReply),
    (error: unknown) => port.postMessage({ error: `${dir}: ${error instanceof Error ? error.message : String(error)}` } satisfies LeaksWorkerReply),
  );
});
port.postMessage({ ready: true } satisfies LeaksWorkerReply);
