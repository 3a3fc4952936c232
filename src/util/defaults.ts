/** Merges options over defaults, ignoring keys whose value is undefined (unset CLI flags). */
export function withDefaults<T extends object>(defaults: T, options: Partial<T> | Record<string, unknown> = {}): T {
  const set = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...defaults, ...set } as T;
}
