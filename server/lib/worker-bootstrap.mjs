// Worker threads do not inherit tsx's loader, so this plain-JS entry enables
// it for the thread and then imports the TypeScript module named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
