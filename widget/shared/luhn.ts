/**
 * The mod-10 checksum every card number carries in its last digit. One
 * definition for the card fields (which check as the shopper types) and the
 * vault (which checks again after decryption); `digits` holds digits only.
 */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2) digit = digit > 4 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
}
