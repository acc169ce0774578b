import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, loadDemoConfig } from '../../../demo/server/config.ts';
import { waitInWords } from '../../../demo/server/errors.ts';

describe('the demo shop’s limits configuration', () => {
  it('uses the documented defaults when the environment sets nothing', () => {
    expect(loadDemoConfig({}).limits).toEqual(DEFAULT_LIMITS);
    expect(DEFAULT_LIMITS).toEqual({
      cardAttemptWindowMs: 3600_000,
      cardAttemptsPerOrder: 3,
      cardAttemptsPerSession: 5,
      cardAttemptsPerClient: 10,
      loginFailuresPerEmail: 5,
      loginFailuresPerClient: 20,
      loginLockoutBaseMs: 30_000,
      loginLockoutMaxMs: 3600_000,
    });
  });

  it('reads every limit from the environment, durations in seconds (fractions allowed)', () => {
    const { limits } = loadDemoConfig({
      DEMO_CARD_ATTEMPT_WINDOW_SECONDS: '600',
      DEMO_CARD_ATTEMPTS_PER_ORDER: '2',
      DEMO_CARD_ATTEMPTS_PER_SESSION: '4',
      DEMO_CARD_ATTEMPTS_PER_CLIENT: '50',
      DEMO_LOGIN_FAILURES_PER_EMAIL: '3',
      DEMO_LOGIN_FAILURES_PER_CLIENT: '30',
      DEMO_LOGIN_LOCKOUT_BASE_SECONDS: '0.5',
      DEMO_LOGIN_LOCKOUT_MAX_SECONDS: '900',
    });
    expect(limits).toEqual({
      cardAttemptWindowMs: 600_000,
      cardAttemptsPerOrder: 2,
      cardAttemptsPerSession: 4,
      cardAttemptsPerClient: 50,
      loginFailuresPerEmail: 3,
      loginFailuresPerClient: 30,
      loginLockoutBaseMs: 500,
      loginLockoutMaxMs: 900_000,
    });
  });

  it.each([
    ['DEMO_CARD_ATTEMPTS_PER_ORDER', '0'],
    ['DEMO_CARD_ATTEMPTS_PER_SESSION', '2.5'],
    ['DEMO_CARD_ATTEMPTS_PER_CLIENT', 'many'],
    ['DEMO_LOGIN_LOCKOUT_BASE_SECONDS', '-1'],
    ['DEMO_CARD_ATTEMPT_WINDOW_SECONDS', '0'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadDemoConfig({ [name]: value })).toThrow(new RegExp(`Invalid demo shop configuration:\\n  ${name}: `));
  });
});

describe('a wait in words', () => {
  it.each([
    [1, '1 second'],
    [45, '45 seconds'],
    [60, '1 minute'],
    [61, '2 minutes'],
    [3599, '1 hour'],
    [3600, '1 hour'],
    [7200, '2 hours'],
  ])('%i s reads "%s"', (seconds, words) => {
    expect(waitInWords(seconds)).toBe(words);
  });
});
