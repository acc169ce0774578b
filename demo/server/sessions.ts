import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { ShopDb } from './db.ts';
import { ShopError } from './errors.ts';

export const SESSION_COOKIE = 'shop_session';
const SHOPPER_LIFETIME_MS = 14 * 24 * 3600_000;
const DASHBOARD_LIFETIME_MS = 8 * 3600_000;

export interface Session {
  /** SHA-256 of the cookie value: the database never holds a usable session id. */
  id: string;
  userId: string | null;
  dashboard: boolean;
}

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');

function cookieValue(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return undefined;
}

/**
 * Server-side sessions behind a random id in an HttpOnly, SameSite=Lax
 * cookie. Guests get one when they first put something in the cart; signing
 * in or out, or into the dashboard, starts a new one (the old id stops
 * working), carrying the cart, the unpaid order and the card attempts along.
 */
export class Sessions {
  readonly #db: ShopDb;

  constructor(db: ShopDb) {
    this.#db = db;
  }

  async current(req: Request): Promise<Session | undefined> {
    const value = cookieValue(req);
    if (value === undefined || !/^[A-Za-z0-9_-]{43}$/.test(value)) return undefined;
    const { rows } = await this.#db.query<{ id: string; user_id: string | null; dashboard: boolean }>(
      'select id, user_id, dashboard from sessions where id = $1 and expires_at > now()',
      [digest(value)],
    );
    const row = rows[0];
    return row && { id: row.id, userId: row.user_id, dashboard: row.dashboard };
  }

  /** Refuses (401 `dashboard_signed_out`) a request whose session has not signed in to the dashboard. */
  async requireDashboard(req: Request): Promise<void> {
    if (!(await this.current(req))?.dashboard) throw new ShopError(401, 'dashboard_signed_out', 'Sign in to the dashboard first.');
  }

  async currentOrNew(req: Request, res: Response): Promise<Session> {
    return (await this.current(req)) ?? this.start(req, res, { userId: null, dashboard: false });
  }

  /** A new session (and cookie) replacing the request's one, if any; the cart moves to it. */
  async start(req: Request, res: Response, what: { userId: string | null; dashboard: boolean }): Promise<Session> {
    const previous = await this.current(req);
    const value = randomBytes(32).toString('base64url');
    const session: Session = { id: digest(value), ...what };
    const lifetime = what.dashboard ? DASHBOARD_LIFETIME_MS : SHOPPER_LIFETIME_MS;
    await this.#db.transaction(async (tx) => {
      await tx.query('insert into sessions (id, user_id, dashboard, expires_at) values ($1, $2, $3, $4)', [
        session.id,
        what.userId,
        what.dashboard,
        new Date(Date.now() + lifetime),
      ]);
      if (previous) {
        await tx.query('update cart_items set session_id = $2 where session_id = $1', [previous.id, session.id]);
        // The unpaid order, and one a webhook paid that the shopper has not been shown yet (shop-routes.ts, paidByWebhook).
        await tx.query('update orders set session_id = $2 where session_id = $1', [previous.id, session.id]);
        // The card attempts follow the shopper too: signing in must not hand a session a fresh allowance.
        await tx.query('update card_attempts set session_id = $2 where session_id = $1', [previous.id, session.id]);
        await tx.query('delete from sessions where id = $1', [previous.id]);
      }
    });
    res.cookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'lax', secure: req.secure, path: '/', maxAge: lifetime });
    return session;
  }

  async end(req: Request, res: Response): Promise<void> {
    const previous = await this.current(req);
    if (previous) await this.#db.query('delete from sessions where id = $1', [previous.id]);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
  }
}
