/**
 * JSON files that Python wrote: config.json, tokenizer.json, SAELens' and sparsify's cfg.json.
 */

/**
 * A JSON file's text (config.json, tokenizer.json, cfg.json, ...; `source` names it in errors)
 * as an object. Python's json module writes infinities and NaN as bare Infinity, -Infinity and
 * NaN (transformers 4 saved Mamba-2's default time_step_limit (0, inf) so), which JSON has no
 * words for: text that JSON.parse refuses is read once more with those three taken as the
 * numbers they name.
 */
export function parseJson(text: string, source: string): Record<string, unknown> {
  try {
    return JSON.parse(text);
  } catch (err) {
    const python = withPythonNumbers(text);
    if (python !== null) return python;
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
}

/** Outside strings, Python's Infinity, -Infinity and NaN, each as a marker string the reviver turns into its number. */
const PYTHON_NUMBER = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g;
const PYTHON_VALUES: Record<string, number> = { "\u0000Infinity": Infinity, "\u0000-Infinity": -Infinity, "\u0000NaN": NaN };

/** `text` parsed with Python's non-finite numbers, or null when it has none or is not JSON even so. */
function withPythonNumbers(text: string): Record<string, unknown> | null {
  let found = false;
  const marked = text.replace(PYTHON_NUMBER, (token) => {
    if (token.startsWith('"')) return token;
    found = true;
    return JSON.stringify(`\u0000${token}`);
  });
  if (!found) return null;
  try {
    return JSON.parse(marked, (_key, value) => (typeof value === "string" && Object.hasOwn(PYTHON_VALUES, value) ? PYTHON_VALUES[value] : value));
  } catch {
    return null;
  }
}
