/**
 * A one-line progress bar for long work (training, harvesting) on a terminal. It draws to
 * stderr only when stderr is a TTY, at most ~10 times a second, so logs and pipes stay clean.
 */
export class ProgressBar {
  private last = 0;
  /** Characters the last redraw wrote. */
  private drawn = 0;
  private readonly start = Date.now();
  private readonly enabled: boolean;

  constructor(private readonly total: number, private readonly label: string, enabled = process.stderr.isTTY === true) {
    this.enabled = enabled && total > 0;
  }

  /** Redraws with `done` of `total` finished and an optional status text. */
  update(done: number, status = ""): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    const frac = Math.min(1, done / this.total);
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.start) / 1000;
    const eta = frac > 0 ? elapsed / frac - elapsed : 0;
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const line = `${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${formatSeconds(elapsed)}<${formatSeconds(eta)} ${status}`;
    const cols = process.stderr.columns ?? 120;
    const shown = line.slice(0, cols - 1);
    // Blank what a longer previous line left beyond this one's end.
    process.stderr.write(`\r${shown.padEnd(this.drawn)}`);
    this.drawn = shown.length;
  }

  finish(status = ""): void {
    if (!this.enabled) return;
    this.last = 0;
    this.update(this.total, status);
    process.stderr.write("\n");
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.floor(s % 60).toString().padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}
