/**
 * Labelled text datasets for probing: .jsonl, .parquet or .arrow files (such as Hugging
 * Face's LabHC/bias_in_bios or fancyzhx/ag_news, downloaded or saved to disk) with a text
 * field and a class field, split into
 * per-class train and test sets the way SAEBench's sparse probing samples them: a fixed
 * number of texts per class, drawn with a seed, from the dataset's own test split when it
 * has one, else held out of the training file.
 */
import { Rng } from "../core/rng.js";
import { ArrowIpcFile } from "../core/arrow-ipc.js";
import { openFileSource } from "../core/file-range.js";
import { arrowRecords } from "./arrow-rows.js";
import { datasetFiles, documentText, jsonlRecords, parquetRows } from "./text.js";

export interface LabeledText {
  text: string;
  /** The class, as a string (numeric labels such as ag_news' 0..3 become "0".."3"). */
  label: string;
  /** A second attribute (e.g. bias_in_bios' gender, for SCR), when one is asked for. */
  attribute?: string;
}

export interface LabeledFields {
  textField?: string;
  labelField?: string;
  /** Also read this field into `attribute`. */
  attributeField?: string;
}

/** Every non-empty text of a .jsonl / .parquet / .arrow file (or folder of them) with its class. */
export async function readLabeledTexts(path: string, o: LabeledFields = {}): Promise<LabeledText[]> {
  const textField = o.textField ?? "text";
  const labelField = o.labelField ?? "label";
  const out: LabeledText[] = [];
  const attributeField = o.attributeField;
  const value = (where: string, record: Record<string, unknown>, field: string, option: string): string => {
    const v = record[field];
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean" && typeof v !== "bigint") {
      throw new Error(`${where}: no string, number or boolean field "${field}" (set ${option})`);
    }
    return String(v);
  };
  const take = (where: string, record: Record<string, unknown>) => {
    const text = documentText(record, textField, where);
    if (text === null) return;
    const label = value(where, record, labelField, "--label-field");
    const attribute = attributeField === undefined ? undefined : value(where, record, attributeField, "--attribute-field");
    out.push(attribute === undefined ? { text, label } : { text, label, attribute });
  };
  for (const file of datasetFiles(path)) {
    if (file.endsWith(".jsonl")) {
      for (const { where, record } of jsonlRecords(file)) take(where, record);
    } else if (file.endsWith(".parquet") || file.endsWith(".arrow")) {
      let row = 0;
      const columns = [textField, labelField, ...(attributeField ? [attributeField] : [])];
      const records = file.endsWith(".arrow") ? arrowRecords(ArrowIpcFile.open(openFileSource(file), file), columns, "--text-field / --label-field")
        : parquetRows(file, columns, "--text-field / --label-field");
      for await (const record of records) take(`${file}: row ${row++}`, record);
    } else {
      throw new Error(`${file}: a labelled dataset must be .jsonl, .parquet or .arrow (text and label fields)`);
    }
  }
  return out;
}

export interface ClassSplitOptions {
  trainPerClass: number;
  testPerClass: number;
  seed: number;
  /** Keep only these classes (each must be present); default: every class. */
  classes?: string[];
  /** The dataset's own test split; without it the test texts are held out of `train`. */
  test?: LabeledText[];
}

export interface ClassSplit {
  /** Class -> texts, classes in a fixed (sorted) order. */
  train: Map<string, string[]>;
  test: Map<string, string[]>;
  /** Classes left out for having too few texts (fewer than 2 to train on or none to test). */
  dropped: string[];
}

function byClass(items: LabeledText[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { text, label } of items) {
    const g = groups.get(label);
    if (g) g.push(text);
    else groups.set(label, [text]);
  }
  return groups;
}

/**
 * Draws up to trainPerClass / testPerClass texts of each class. A held-out split of a class
 * too small for both gives the test set at most half of it and trains on the rest.
 */
export function splitByClass(train: LabeledText[], o: ClassSplitOptions): ClassSplit {
  const rng = new Rng(o.seed);
  const trainGroups = byClass(train);
  const testGroups = o.test ? byClass(o.test) : null;
  let classes = [...trainGroups.keys()].sort();
  if (o.classes) {
    const missing = o.classes.filter((c) => !trainGroups.has(c));
    if (missing.length) throw new Error(`no texts of class ${missing.map((c) => JSON.stringify(c)).join(", ")} (the dataset has ${classes.join(", ")})`);
    classes = [...o.classes];
  }
  const out: ClassSplit = { train: new Map(), test: new Map(), dropped: [] };
  for (const c of classes) {
    const pool = rng.shuffle([...trainGroups.get(c)!]);
    let trainTexts: string[];
    let testTexts: string[];
    if (testGroups) {
      trainTexts = pool.slice(0, o.trainPerClass);
      testTexts = rng.shuffle([...(testGroups.get(c) ?? [])]).slice(0, o.testPerClass);
    } else {
      // A class too small for both sizes gives at most half its texts to the test set.
      const nTest = pool.length >= o.trainPerClass + o.testPerClass ? o.testPerClass : Math.min(o.testPerClass, Math.floor(pool.length / 2));
      testTexts = pool.slice(0, nTest);
      trainTexts = pool.slice(nTest, nTest + o.trainPerClass);
    }
    if (trainTexts.length < 2 || testTexts.length < 1) {
      out.dropped.push(c);
      continue;
    }
    out.train.set(c, trainTexts);
    out.test.set(c, testTexts);
  }
  if (out.train.size < 2) {
    throw new Error(`probing needs at least 2 classes with texts to train and test on; usable: ${[...out.train.keys()].join(", ") || "none"}` +
      (out.dropped.length ? ` (too few texts: ${out.dropped.join(", ")})` : ""));
  }
  return out;
}
