/** The account page: the card fields in signup mode save a card for later, with no purchase. */
import { byId, describeCard, mountCardForm, Notices, postJson, type ShopCard } from './shop.ts';

interface SavedCardAnswer {
  token: string;
  reusable: boolean;
  card: ShopCard;
}

const form = byId<HTMLFormElement>('card-form');
const confirmation = byId('confirmation');

void mountCardForm({
  cardOptions: { mode: 'signup' },
  form,
  button: byId<HTMLButtonElement>('submit'),
  notices: new Notices(byId('status'), byId('error')),
  working: 'Saving your card…',
  async complete(token, card) {
    const answer = await postJson<SavedCardAnswer>('/api/cards', { token: token.token });
    byId('saved-card').textContent = describeCard(answer.card);
    byId('saved-token').textContent = answer.token;
    form.hidden = true;
    confirmation.hidden = false;
    // Moving focus reads the confirmation out and keeps keyboard users where the form was.
    byId('confirmation-heading').focus();
    byId('add-another').onclick = () => {
      card.clear();
      confirmation.hidden = true;
      form.hidden = false;
      card.focus('number');
    };
  },
});
