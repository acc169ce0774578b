import { Router } from 'express';
import { z } from 'zod';
import { failedAttempt } from './card-attempts.ts';
import { clientOf } from './client.ts';
import { newShopId, shopIdPattern, type Shop } from './context.ts';
import { fromVault, parseBody, ShopError } from './errors.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { orderView, TokenName } from './shop-routes.ts';
import type { VaultToken } from './vault-client.ts';

const Credentials = z.strictObject({
  email: z.email().max(254).transform((email) => email.toLowerCase()),
  password: z.string().min(8).max(200),
});
const CardId = z.string().regex(shopIdPattern('card'));

interface SavedCardRow {
  id: string;
  token: string;
}

/**
 * A saved card as the shopper's pages see it. The page names it by the
 * shop's id; the token is there for the card fields in cvc mode, which show
 * it with the brand and last 4.
 */
const cardView = (row: SavedCardRow, token: VaultToken, defaultCard: string | null) => ({
  id: row.id,
  token: row.token,
  brand: token.card.brand,
  last4: token.card.last4,
  expMonth: token.card.exp_month,
  expYear: token.card.exp_year,
  networkToken: token.network_token ? { status: token.network_token.status } : null,
  isDefault: row.id === defaultCard,
});

/** Sign-up, sign-in, and the shopper's account: saved cards (added without a purchase, deleted, default) and orders. */
export function accountRoutes(shop: Shop): Router {
  const { db, vault, sessions, cardAttempts, logins, log } = shop;
  const router = Router();

  const requireUser = async (req: Parameters<typeof sessions.current>[0]) => {
    const session = await sessions.current(req);
    if (!session?.userId) throw new ShopError(401, 'signed_out', 'Please sign in first.');
    return { session, userId: session.userId };
  };

  router.get('/me', async (req, res) => {
    const session = await sessions.current(req);
    const { rows } = await db.query<{ id: string; email: string }>('select id, email from users where id = $1', [session?.userId ?? '']);
    res.json({ user: rows[0] ?? null, dashboard: session?.dashboard ?? false });
  });

  router.post('/signup', async (req, res) => {
    const { email, password } = parseBody(Credentials, req.body);
    const id = newShopId('usr');
    const inserted = await db.query('insert into users (id, email, password_hash) values ($1, $2, $3) on conflict (email) do nothing', [
      id,
      email,
      await hashPassword(password),
    ]);
    if (inserted.affectedRows === 0) throw new ShopError(409, 'email_taken', 'An account with this e-mail address already exists. Sign in instead.');
    await sessions.start(req, res, { userId: id, dashboard: false });
    res.status(201).json({ user: { id, email } });
  });

  /**
   * Sign-in, behind the lockout: an address with no account is counted and
   * locked exactly like one with an account, and its password is checked
   * against a decoy hash, so neither the answer nor its timing tells them
   * apart.
   */
  router.post('/login', async (req, res) => {
    const { email, password } = parseBody(Credentials, req.body);
    let userId: string | undefined;
    const signedIn = await logins.signIn({ account: `email:${email}`, client: clientOf(req) }, async () => {
      const { rows } = await db.query<{ id: string; password_hash: string }>('select id, password_hash from users where email = $1', [email]);
      userId = rows[0]?.id;
      return verifyPassword(password, rows[0]?.password_hash);
    });
    if (!signedIn || userId === undefined) throw new ShopError(401, 'wrong_credentials', 'The e-mail address or password is not right.');
    await sessions.start(req, res, { userId, dashboard: false });
    res.json({ user: { id: userId, email } });
  });

  router.post('/logout', async (req, res) => {
    await sessions.end(req, res);
    res.json({ ok: true });
  });

  router.get('/account', async (req, res) => {
    const { userId } = await requireUser(req);
    const user = (await db.query<{ email: string; default_card: string | null }>('select email, default_card from users where id = $1', [userId])).rows[0]!;
    const saved = (await db.query<SavedCardRow>('select id, token from saved_cards where user_id = $1 order by created_at', [userId])).rows;
    // The vault has the card's details; a token it no longer has (deleted elsewhere) is dropped from the list.
    const cards = (
      await Promise.all(
        saved.map(async (row) => {
          try {
            return cardView(row, await vault.readToken(row.token), user.default_card);
          } catch (error) {
            const answer = fromVault(error, log);
            if (answer.code === 'card_not_found') return undefined;
            throw answer;
          }
        }),
      )
    ).filter((card) => card !== undefined);
    const orders = (await db.query<Parameters<typeof orderView>[0]>(`select * from orders where user_id = $1 and status <> 'awaiting_payment' order by created_at desc limit 20`, [userId])).rows;
    res.json({ user: { id: userId, email: user.email }, cards, orders: orders.map(orderView) });
  });

  /**
   * Saves a card from the fields in signup mode, with no purchase: the token
   * must be reusable and made for this account, and pass an account
   * verification at the vault (a small authorization, voided). A card that
   * fails it is deleted from the vault and the shopper is told why (the
   * reason only the first time, as at checkout). Verifications are card
   * attempts: they count against the session's and the client's limits.
   */
  router.post('/cards', async (req, res) => {
    const { token } = parseBody(z.strictObject({ token: TokenName }), req.body);
    const { session, userId } = await requireUser(req);
    const scope = { sessionId: session.id, client: clientOf(req) };
    await cardAttempts.assertAllowed(db, scope);
    const read = await vault.readToken(token).catch((error: unknown) => Promise.reject(fromVault(error, log)));
    if (!read.reusable || read.customer !== userId) {
      throw new ShopError(422, 'card_not_saveable', 'This card entry cannot be saved on your account. Please enter the card again.');
    }
    const attemptId = await db.transaction((tx) => cardAttempts.record(tx, 'verification', scope));
    let verified: Awaited<ReturnType<typeof vault.verifyToken>>;
    try {
      verified = await vault.verifyToken(token, `verify-${token}`);
    } catch (error) {
      await cardAttempts.settle(db, attemptId, failedAttempt(error).outcome);
      throw fromVault(error, log);
    }
    if (verified.verification.status === 'failed') {
      await cardAttempts.settle(db, attemptId, 'declined');
      await vault.deleteToken(token).catch(() => undefined);
      throw new ShopError(402, 'card_declined', await cardAttempts.declineMessage(db, scope, verified.verification.decline_code ?? 'generic_decline'));
    }
    await cardAttempts.settle(db, attemptId, 'approved');
    const id = newShopId('card');
    await db.transaction(async (tx) => {
      await tx.query('insert into saved_cards (id, token, user_id) values ($1, $2, $3)', [id, token, userId]);
      await tx.query('update users set default_card = coalesce(default_card, $2) where id = $1', [userId, id]);
    });
    const { rows } = await db.query<{ default_card: string | null }>('select default_card from users where id = $1', [userId]);
    res.status(201).json({ card: cardView({ id, token }, verified, rows[0]!.default_card) });
  });

  router.delete('/cards/:id', async (req, res) => {
    const { userId } = await requireUser(req);
    const id = parseBody(CardId, req.params['id']);
    const { rows } = await db.query<SavedCardRow>('select id, token from saved_cards where id = $1 and user_id = $2', [id, userId]);
    if (!rows[0]) throw new ShopError(404, 'card_not_found', 'This card is not saved on your account.');
    await vault.deleteToken(rows[0].token).catch((error: unknown) => {
      // Already gone at the vault: removing it here is all that is left to do.
      if (fromVault(error, log).code !== 'card_not_found') throw fromVault(error, log);
    });
    await db.transaction(async (tx) => {
      await tx.query('delete from saved_cards where id = $1', [id]);
      // The oldest remaining card becomes the default, so checkout always preselects one.
      await tx.query(
        `update users set default_card = (select id from saved_cards where user_id = $1 order by created_at limit 1)
          where id = $1 and (default_card = $2 or default_card is null)`,
        [userId, id],
      );
    });
    res.json({ deleted: true });
  });

  router.post('/cards/:id/default', async (req, res) => {
    const { userId } = await requireUser(req);
    const id = parseBody(CardId, req.params['id']);
    const updated = await db.query('update users set default_card = $2 where id = $1 and exists (select 1 from saved_cards where id = $2 and user_id = $1)', [
      userId,
      id,
    ]);
    if (updated.affectedRows === 0) throw new ShopError(404, 'card_not_found', 'This card is not saved on your account.');
    res.json({ ok: true });
  });

  return router;
}
