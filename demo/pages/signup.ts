/**
 * Sign-up: e-mail and password (hashed by the shop's server), then, with no
 * purchase, a card in the fields' signup mode. The shop verifies the card at
 * the vault before saving it, then shows the account page.
 */
import { createCardForm } from './card-form.ts';
import { byId, connectToVault, failureMessage, initHeader, Notices, postJson, type User } from './shop.ts';

const notices = new Notices(byId('status'), byId('error'));

async function addCard(user: User): Promise<void> {
  byId('account-step').hidden = true;
  byId('card-step').hidden = false;
  byId('card-heading').focus();
  const tessera = await connectToVault(notices);
  if (!tessera) return;
  createCardForm(tessera, {
    form: byId<HTMLFormElement>('card-form'),
    button: byId('submit'),
    container: '#card-fields',
    notices,
    working: 'Checking and saving your card…',
    async complete(result) {
      if (!('token' in result)) throw new Error('The card fields answered with a CVC, not a token.');
      await postJson('/api/cards', { token: result.token });
      location.assign('/account.html?added=1');
    },
  }).mount({ mode: 'signup', customer: user.id });
}

void initHeader();
byId<HTMLFormElement>('signup-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  notices.clear();
  try {
    const { user } = await postJson<{ user: User }>('/api/signup', {
      email: byId<HTMLInputElement>('email').value.trim(),
      password: byId<HTMLInputElement>('password').value,
    });
    void initHeader();
    await addCard(user);
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  }
});
