/**
 * The hosted payment page (`/pay/plink_…`): what the vault embeds in it as a
 * JSON data block, and its words in each of the fields' locales. Shared by
 * the vault, which renders the page, and the page's script.
 */
export const PAY_CONFIG_ELEMENT_ID = 'tessera-pay';

export interface PayPageStrings {
  title: string;
  payButton: string;
  paying: string;
  paidTitle: string;
  paidText: string;
  expiredTitle: string;
  expiredText: string;
  completedTitle: string;
  completedText: string;
  notFoundTitle: string;
  notFoundText: string;
  declined: string;
  declinedInsufficientFunds: string;
  busy: string;
  failed: string;
  reference: string;
  securedBy: string;
}

/** What the page's script needs; never card data (the card stays in the fields' iframe). */
export interface PayPageConfig {
  link: string;
  publishableKey: string;
  locale: string;
  strings: Pick<PayPageStrings, 'payButton' | 'paying' | 'paidTitle' | 'paidText' | 'expiredTitle' | 'expiredText' | 'completedTitle' | 'completedText' | 'declined' | 'declinedInsufficientFunds' | 'busy' | 'failed'>;
}

const en: PayPageStrings = {
  title: 'Pay {merchant}',
  payButton: 'Pay {amount}',
  paying: 'Paying…',
  paidTitle: 'Payment received',
  paidText: 'Thank you. {merchant} has received your payment. You can close this page.',
  expiredTitle: 'This payment link has expired',
  expiredText: 'It takes no more payments. Ask {merchant} for a new link.',
  completedTitle: 'This payment link has been paid',
  completedText: 'There is nothing left to pay. Ask {merchant} if you think this is wrong.',
  notFoundTitle: 'Payment link not found',
  notFoundText: 'Check the address, or ask the seller for a new link.',
  declined: 'Your card was declined. Try another card.',
  declinedInsufficientFunds: 'Your card has insufficient funds. Try another card.',
  busy: 'Someone is paying this link right now. Wait a moment and try again.',
  failed: 'The payment could not be made. Try again.',
  reference: 'Reference',
  securedBy: 'Card details go straight to the payment vault; {merchant} never sees them.',
};

const fr: PayPageStrings = {
  title: 'Payer {merchant}',
  payButton: 'Payer {amount}',
  paying: 'Paiement en cours…',
  paidTitle: 'Paiement reçu',
  paidText: 'Merci. {merchant} a bien reçu votre paiement. Vous pouvez fermer cette page.',
  expiredTitle: 'Ce lien de paiement a expiré',
  expiredText: "Il n'accepte plus de paiement. Demandez un nouveau lien à {merchant}.",
  completedTitle: 'Ce lien de paiement a déjà été payé',
  completedText: "Il ne reste rien à payer. Contactez {merchant} en cas d'erreur.",
  notFoundTitle: 'Lien de paiement introuvable',
  notFoundText: "Vérifiez l'adresse ou demandez un nouveau lien au vendeur.",
  declined: 'Votre carte a été refusée. Essayez une autre carte.',
  declinedInsufficientFunds: 'Le solde de votre carte est insuffisant. Essayez une autre carte.',
  busy: "Quelqu'un paie ce lien en ce moment. Patientez un instant et réessayez.",
  failed: "Le paiement n'a pas pu être effectué. Réessayez.",
  reference: 'Référence',
  securedBy: 'Les données de carte vont directement au coffre de paiement ; {merchant} ne les voit jamais.',
};

const ar: PayPageStrings = {
  title: 'الدفع إلى {merchant}',
  payButton: 'ادفع {amount}',
  paying: 'جارٍ الدفع…',
  paidTitle: 'تم استلام الدفعة',
  paidText: 'شكرًا لك. استلم {merchant} دفعتك. يمكنك إغلاق هذه الصفحة.',
  expiredTitle: 'انتهت صلاحية رابط الدفع هذا',
  expiredText: 'لم يعد يقبل أي دفعة. اطلب رابطًا جديدًا من {merchant}.',
  completedTitle: 'تم دفع رابط الدفع هذا',
  completedText: 'لم يتبقَّ شيء للدفع. تواصل مع {merchant} إذا كنت تظن أن هذا خطأ.',
  notFoundTitle: 'لم يُعثر على رابط الدفع',
  notFoundText: 'تحقق من العنوان أو اطلب رابطًا جديدًا من البائع.',
  declined: 'تم رفض بطاقتك. جرّب بطاقة أخرى.',
  declinedInsufficientFunds: 'رصيد بطاقتك غير كافٍ. جرّب بطاقة أخرى.',
  busy: 'يقوم شخص آخر بدفع هذا الرابط الآن. انتظر لحظة ثم حاول مجددًا.',
  failed: 'تعذّر إتمام الدفع. حاول مجددًا.',
  reference: 'المرجع',
  securedBy: 'تنتقل بيانات البطاقة مباشرة إلى خزنة الدفع؛ ولا يراها {merchant} أبدًا.',
};

/** The page's locales: the card fields' own. */
export const PAY_PAGE_STRINGS: Readonly<Record<string, PayPageStrings>> = { en, fr, ar };
export const RTL_LOCALES = ['ar'];

/** Fills `{name}` placeholders. */
export const fill = (text: string, values: Record<string, string>): string => text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
