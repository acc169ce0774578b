/** Sign-in: e-mail and password to the shop's server, which starts a session; then back to where the shopper was. */
import { byId, failureMessage, initHeader, postJson } from './shop.ts';

void initHeader();
const form = byId<HTMLFormElement>('login-form');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = byId('error');
  error.textContent = '';
  try {
    await postJson('/api/login', { email: byId<HTMLInputElement>('email').value.trim(), password: byId<HTMLInputElement>('password').value });
    const next = new URLSearchParams(location.search).get('next');
    // Only a path of this shop, never another site.
    location.assign(next !== null && /^\/[a-z]+\.html$/.test(next) ? next : '/account.html');
  } catch (failure) {
    error.textContent = failureMessage(failure) ?? '';
  }
});
