// Waits, bounded, for a condition the test cannot be told about: polls `check` every `stepMs`
// (a check that throws or rejects counts as not yet) and throws once `withinMs` have passed.
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  withinMs = 20_000,
  stepMs = 100,
): Promise<void> {
  for (let i = 0; i <= withinMs / stepMs; i++) {
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  throw new Error(`${what}: not within ${withinMs} ms`);
}
