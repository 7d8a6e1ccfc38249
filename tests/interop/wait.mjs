// Bounded waiting: every wait in these tests ends, one way or the other.

/** How long any single exchange with the server may take. */
export const EXCHANGE_MS = 10_000;

/** Rejects if `promise` has not settled within `ms`; `what` (a string or a
 * function giving one) names what was awaited. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => {
      const name = typeof what === "function" ? what() : what;
      fail(new Error(`${name}: nothing within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Resolves once `predicate()` holds (checked every 25 ms), bounded. */
export function eventually(predicate, what, ms = EXCHANGE_MS) {
  let timer;
  return within(
    ms,
    new Promise((ok) => {
      const check = () => (predicate() ? ok() : (timer = setTimeout(check, 25)));
      check();
    }),
    what,
  ).finally(() => clearTimeout(timer));
}
