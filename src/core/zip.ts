/**
 * The directory of a zip archive (with zip64 for archives past 4 GiB): where each entry's
 * bytes lie and how they are stored. torch.save checkpoints and NumPy .npz files are zip
 * archives. Every offset is checked against the file; problems go to `fail`.
 */
import { type Fail, readRange } from "./file-range.js";

export interface ZipEntry {
  /** Byte range of the entry's (possibly compressed) data in the file. */
  start: number;
  size: number;
  /** 0: stored, 8: deflate. */
  method: number;
  uncompressedSize: number;
}

export function readZipDirectory(fd: number, fileSize: number, fail: Fail): Map<string, ZipEntry> {
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  const tailLen = Math.min(fileSize, 22 + 0xffff + 20);
  const tail = readRange(fd, fileSize - tailLen, tailLen, fail);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) if (tv.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) fail("no zip end-of-directory record: the file is truncated or not a zip archive");
  let count = tv.getUint16(eocd + 10, true);
  let dirSize = tv.getUint32(eocd + 12, true);
  let dirOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== 0x07064b50) fail("zip64 end-of-directory locator is missing");
    const at = Number(tv.getBigUint64(loc + 8, true));
    if (at + 56 > fileSize) fail("zip64 end-of-directory record lies past the end of the file");
    const rec = readRange(fd, at, 56, fail);
    const rv = new DataView(rec.buffer, rec.byteOffset, 56);
    if (rv.getUint32(0, true) !== 0x06064b50) fail("bad zip64 end-of-directory record");
    count = Number(rv.getBigUint64(32, true));
    dirSize = Number(rv.getBigUint64(40, true));
    dirOffset = Number(rv.getBigUint64(48, true));
  }
  if (dirOffset + dirSize > fileSize) fail(`zip directory (bytes ${dirOffset}..${dirOffset + dirSize}) runs past the end of the ${fileSize}-byte file`);
  const dir = readRange(fd, dirOffset, dirSize, fail);
  const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > dirSize || dv.getUint32(p, true) !== 0x02014b50) fail(`zip directory entry ${n} is malformed`);
    const method = dv.getUint16(p + 10, true);
    let size = dv.getUint32(p + 20, true);
    let uncompressedSize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen > dirSize) fail(`zip directory entry ${n} runs past the directory`);
    const name = new TextDecoder().decode(dir.subarray(p + 46, p + 46 + nameLen));
    // zip64 extra field: the 64-bit values of whichever fields hold 0xffffffff, in order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => { const v = Number(dv.getBigUint64(q, true)); q += 8; return v; };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next();
        if (size === 0xffffffff) size = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    if (local + 30 > fileSize) fail(`zip entry ${name}: local header past the end of the file`);
    const lh = readRange(fd, local, 30, fail);
    const lv = new DataView(lh.buffer, lh.byteOffset, 30);
    if (lv.getUint32(0, true) !== 0x04034b50) fail(`zip entry ${name}: bad local header`);
    const start = local + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (start + size > fileSize) fail(`zip entry ${name} (bytes ${start}..${start + size}) runs past the end of the ${fileSize}-byte file`);
    entries.set(name, { start, size, method, uncompressedSize });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}
