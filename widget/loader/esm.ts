/**
 * tessera.mjs, for bundlers and module scripts: `loadTessera(vaultUrl)` adds
 * the vault's checkout.js to the page once, defines `<tessera-card>` and
 * resolves with `Tessera`. The vault's origin is part of the security model
 * (the fields talk to nothing else), so checkout.js always comes from the
 * vault and is never bundled.
 */
import { defineTesseraCard } from './element.ts';
import type { TesseraStatic } from './types.ts';

export type * from './types.ts';

let loading: Promise<TesseraStatic> | undefined;
let loadingFrom: string | undefined;

/** The script element for `src`: the page's own if it has one, else a new one. */
function checkoutScript(src: string): HTMLScriptElement {
  const existing = Array.from(document.scripts).find((script) => script.src === src);
  if (existing) return existing;
  const script = document.createElement('script');
  script.src = src;
  script.async = true;
  return document.head.appendChild(script);
}

function inject(src: string): Promise<TesseraStatic> {
  return new Promise((resolve, reject) => {
    if (window.Tessera) return resolve(window.Tessera);
    const script = checkoutScript(src);
    script.addEventListener('load', () =>
      window.Tessera ? resolve(window.Tessera) : reject(new Error(`Tessera: ${src} loaded but did not define Tessera`)),
    );
    script.addEventListener('error', () => {
      // A failed tag would be reused by the next attempt and never load again.
      script.remove();
      reject(new Error(`Tessera: could not load ${src}`));
    });
  });
}

/**
 * Loads checkout.js from the vault at `vaultUrl` (e.g. `https://vault.example`).
 * Every call shares one load; after a failure the next call tries again.
 */
export function loadTessera(vaultUrl: string): Promise<TesseraStatic> {
  if (typeof window === 'undefined') return Promise.reject(new TypeError('Tessera: loadTessera() needs a browser'));
  const src = new URL('/v1/checkout.js', vaultUrl).href;
  if (loading && loadingFrom !== src) {
    return Promise.reject(new TypeError(`Tessera: already loaded from ${loadingFrom}; one page talks to one vault`));
  }
  loadingFrom = src;
  loading ??= inject(src).then(
    (Tessera) => {
      defineTesseraCard(Tessera);
      return Tessera;
    },
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}
