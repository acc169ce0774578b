/** English, the reference locale: every other locale must have exactly these keys. */
export const en = {
  number: 'Card number',
  expiry: 'Expiry date',
  expiryPlaceholder: 'MM / YY',
  cvc: 'Security code',
  name: 'Name on card',
  postalCode: 'Postal code',
  paymentLegend: 'Pay by card',
  signupLegend: 'Save card',
  cvcLegend: 'Confirm your security code',
  saveCard: 'Save this card for next time',
  signupNotice: 'This card will be saved for future payments.',
  cardEnding: 'Card ending in',
  incomplete_number: 'Your card number is incomplete.',
  invalid_number: 'Your card number is invalid.',
  incomplete_expiry: "Your card's expiry date is incomplete.",
  invalid_expiry_month: "Your card's expiry month is invalid.",
  expiry_in_past: "Your card's expiry date is in the past.",
  incomplete_cvc: "Your card's security code is incomplete.",
  incomplete_name: 'Enter the name on your card.',
  incomplete_postal_code: 'Your postal code is incomplete.',
  card_number_not_allowed: 'Enter your card number in the card number field, not here.',
  card_not_accepted: 'This card cannot be used here. Try another card.',
  network_error: 'We could not reach the payment service. Please try again.',
  failed: 'We could not process your card. Check the details and try again.',
};

export type Messages = typeof en;
