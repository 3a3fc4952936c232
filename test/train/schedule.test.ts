/** Learning-rate schedules against values worked out by hand from their definitions. */
import { describe, expect, it } from "vitest";
import { defaultSchedule, lrAt, validateSchedule } from "../../src/train/schedule.js";

describe("learning-rate schedules", () => {
  it("constant (the default): linear warm-up over 5%, flat, linear decay to 0 over the last 20%", () => {
    const s = defaultSchedule(2, 100);
    expect(s).toMatchObject({ warmupSteps: 5, decayStart: 80, kind: "constant" });
    expect(lrAt(s, 0)).toBeCloseTo(2 / 5, 12);
    expect(lrAt(s, 4)).toBe(2);
    expect(lrAt(s, 50)).toBe(2);
    expect(lrAt(s, 80)).toBe(2);
    expect(lrAt(s, 90)).toBeCloseTo(1, 12);
    expect(lrAt(s, 99)).toBeCloseTo(2 / 20, 12);
  });

  it("cosine: from lr to lr_end over the main phase, torch's CosineAnnealingLR; no decay phase by default", () => {
    const s = { ...defaultSchedule(1, 100, "cosine"), warmupSteps: 0, lrEnd: 0.1 };
    expect(s.decayStart).toBe(100);
    expect(lrAt(s, 0)).toBe(1);
    expect(lrAt(s, 50)).toBeCloseTo(0.55, 12); // half way: cos(pi / 2) = 0
    expect(lrAt(s, 25)).toBeCloseTo(0.1 + 0.45 * (1 + Math.SQRT1_2), 12);
    expect(lrAt(s, 99)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos((99 * Math.PI) / 100)), 12);
    // lr_end defaults to lr / 10, as in SAELens.
    expect(lrAt({ ...s, lrEnd: undefined }, 50)).toBeCloseTo(0.55, 12);
  });

  it("cosine_restarts: the cosine restarts every floor(T / cycles) steps", () => {
    const s = { lr: 1, steps: 100, warmupSteps: 0, decayStart: 100, kind: "cosine_restarts" as const, lrEnd: 0, cycles: 2 };
    expect(lrAt(s, 0)).toBe(1);
    expect(lrAt(s, 25)).toBeCloseTo(0.5, 12);
    expect(lrAt(s, 49)).toBeCloseTo((1 + Math.cos((49 * Math.PI) / 50)) / 2, 12);
    expect(lrAt(s, 50)).toBe(1);
    expect(lrAt(s, 75)).toBeCloseTo(0.5, 12);
  });

  it("cosine with warm-up and decay: three phases, the decay starting from lr_end", () => {
    const s = { lr: 1, steps: 100, warmupSteps: 10, decayStart: 90, kind: "cosine" as const, lrEnd: 0.2 };
    expect(lrAt(s, 0)).toBeCloseTo(0.1, 12);
    expect(lrAt(s, 9)).toBe(1);
    expect(lrAt(s, 10)).toBe(1); // the cosine's clock starts after the warm-up
    expect(lrAt(s, 50)).toBeCloseTo(0.6, 12); // 40 of its 80 steps
    expect(lrAt(s, 90)).toBeCloseTo(0.2, 12);
    expect(lrAt(s, 95)).toBeCloseTo(0.1, 12);
    expect(lrAt(s, 99)).toBeCloseTo(0.02, 12);
  });

  it("refuses schedules that cannot work", () => {
    const base = { lr: 1, steps: 100, warmupSteps: 0, decayStart: 90 };
    expect(() => validateSchedule({ ...base, kind: "cosine", lrEnd: 0 })).toThrow(/decay after the cosine schedule starts from lr_end, which is 0/);
    expect(() => validateSchedule({ ...base, kind: "cosine", lrEnd: 2 })).toThrow(/lr_end must be in \[0, lr = 1\]/);
    expect(() => validateSchedule({ ...base, kind: "cosine_restarts", cycles: 0 })).toThrow(/cycles must be a positive integer/);
    expect(() => validateSchedule({ ...base, kind: "linear" as never })).toThrow(/unknown lr schedule "linear"/);
    expect(() => validateSchedule({ ...base, kind: "cosine", lrEnd: 0, decayStart: 100 })).not.toThrow();
  });
});
