/**
 * Resumable outputs (a Neuronpedia export folder, an autointerp journal) record the settings
 * they were made with and refuse to be continued under others; this says which differ.
 */

/** The keys of `now` whose value (compared as JSON) is not the one `before` recorded. */
export function changedSettings(before: unknown, now: Record<string, unknown>): string[] {
  const recorded = (before ?? {}) as Record<string, unknown>;
  return Object.keys(now).filter((k) => JSON.stringify(recorded[k]) !== JSON.stringify(now[k]));
}
