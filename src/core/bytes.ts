/** The parts joined into one byte array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes as a string of one char per byte (latin1), a cheap exact key for byte strings. */
export function latin1(bytes: Uint8Array): string {
  let out = "";
  // Short byte strings (tokens, code points: the hot case) char by char, which is several
  // times faster than spreading a subarray; long ones 8 KiB at a time.
  if (bytes.length <= 64) {
    for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!);
    return out;
  }
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}
