import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { isExecutable } from './executables.ts';

const execFileAsync = promisify(execFile);

const DEBIAN_CHROMIUM = '/usr/bin/chromium';
const DEBIAN_HEADLESS_SHELL = '/usr/bin/chromium-headless-shell';
const APT_TIMEOUT_MS = 5 * 60_000;

/**
 * Flags for every Chromium the tests launch (spread them: `args: [...CHROMIUM_ARGS]`).
 * - `--no-sandbox`: CI runs as root in a container, where Chromium's sandbox cannot start.
 * - `--disable-gpu`: CI machines have no GPU; software rendering avoids GPU-process crashes.
 * - the `--disable-*-networking/update/sync`, `--no-first-run` and `--disable-quic` flags:
 *   the machine has no internet, and background requests to Google would only add
 *   timeouts and noise to what the tests observe.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * The Chromium executable for browser tests, in order of preference: `CHROMIUM_PATH`,
 * Debian's `/usr/bin/chromium`, Playwright's own download, and, as root on Debian, a
 * fresh `apt-get install chromium`. Playwright's downloader is never used: browser
 * downloads are blocked where the suite runs, while the Debian mirror is reachable.
 */
export async function findChromium(): Promise<string> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (await isExecutable(configured)) return configured;
    throw new Error(`CHROMIUM_PATH is set to "${configured}", but there is no executable file there.`);
  }
  if (await isExecutable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;

  const playwrightChromium = await playwrightChromiumPath();
  if (playwrightChromium) return playwrightChromium;

  if (await canInstallWithApt()) {
    await aptInstallChromium();
    if (await isExecutable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  }
  throw new Error(
    'Chromium was not found. Install it (on Debian: `apt-get install chromium`) ' +
      'or set CHROMIUM_PATH to a Chromium or Chrome executable.',
  );
}

/**
 * The Chromium for the end-to-end tests: `CHROMIUM_PATH` when set, else Debian's
 * `chromium-headless-shell` (the same Chromium release as its `chromium`
 * package, built as the headless shell that Playwright itself runs headless
 * tests on; as root on Debian it is installed when missing), else
 * `findChromium()`. The same Blink, V8 and site isolation, without the
 * desktop browser's machinery: the Playwright step used half the CPU
 * (docs/decisions.md, "Test time"), on a machine where that step is
 * CPU-bound. The benchmarks keep `findChromium()`, the browser shoppers run.
 */
export async function findTestChromium(): Promise<string> {
  if (process.env.CHROMIUM_PATH) return findChromium();
  if (await isExecutable(DEBIAN_HEADLESS_SHELL)) return DEBIAN_HEADLESS_SHELL;
  if (await canInstallWithApt()) {
    try {
      await aptInstall('chromium-headless-shell');
    } catch (error) {
      console.log(`chromium-headless-shell could not be installed; the tests use the full Chromium. ${error instanceof Error ? error.message : String(error)}`);
    }
    if (await isExecutable(DEBIAN_HEADLESS_SHELL)) return DEBIAN_HEADLESS_SHELL;
  }
  return findChromium();
}

/** Playwright reports where its browser would be even when it was never downloaded. */
async function playwrightChromiumPath(): Promise<string | undefined> {
  const { chromium } = await import('@playwright/test');
  const path = chromium.executablePath();
  return (await isExecutable(path)) ? path : undefined;
}

async function canInstallWithApt(): Promise<boolean> {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && (await isExecutable('/usr/bin/apt-get'));
}

async function aptInstallChromium(): Promise<void> {
  console.log('Chromium not found: installing it with apt-get (about a minute).');
  await aptInstall('chromium');
}

/** A fresh machine's package lists may be empty or stale, so a failed install is retried after an update. */
async function aptInstall(name: string): Promise<void> {
  try {
    await aptGet(['install', '-y', name]);
  } catch {
    await aptGet(['update']);
    await aptGet(['install', '-y', name]);
  }
}

async function aptGet(args: string[]): Promise<void> {
  try {
    await execFileAsync('apt-get', args, {
      timeout: APT_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    const output = error instanceof Error && 'stderr' in error ? String(error.stderr) : '';
    throw new Error(`\`apt-get ${args.join(' ')}\` failed:\n${lastLines(output, 20)}`, { cause: error });
  }
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
