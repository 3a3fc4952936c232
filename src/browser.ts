/**
 * saekit in the browser: everything that needs no file system or native addon. SAEs of
 * every architecture (forward, hand-written backward, Adam and Schedule-Free SignSGD, initialisation, in-memory
 * training) on the TypeScript reference kernels; activations and SAE folders from bytes; SAELens-format SAEs and safetensors read from bytes (a
 * fetch() response, a dropped File); metrics, sparse probing, TPP, SCR and absorption on
 * activations already in hand; the latent analyses, t-SNE, k-means and every
 * SVG figure and dashboard page the CLI writes; and the language models (GPT-NeoX, GPT-2,
 * GPT-Neo, Llama, Gemma, llama2.c) from their files' bytes, with tokenizers, hooks,
 * generation, activations computed as training reads them, splice evaluation, the prompt
 * view and latent dashboards (also as Neuronpedia's batch JSON).
 *
 *   const weights = SafetensorsReader.fromBytes(new Uint8Array(await (await fetch(url)).arrayBuffer()));
 *   const { sae } = saeFromSaeLens(cfgJson, "cfg.json", weights, () => { throw new Error("no extras"); });
 *   const code = sae.encode(activations, rows);
 *
 * Bundlers pick this entry through the package's "browser" export condition, and swap
 * core/native.js for core/native-browser.js through the "browser" field.
 */
export * from "./core/kernels.js";
export { Rng, counterNormal } from "./core/rng.js";
export { Tensor, numel } from "./core/tensor.js";
export type { Shape } from "./core/tensor.js";
export { SafetensorsReader, SafetensorsError, encodeSafetensors } from "./core/safetensors-format.js";
export type { TensorToWrite, TensorInfo } from "./core/safetensors-format.js";
export { bytesSource, type ByteSource } from "./core/byte-source.js";

export * from "./sae/config.js";
export type { Sae, ParamSet, TrainStep, StepStats } from "./sae/sae.js";
export { zerosLike } from "./sae/sae.js";
export type { SparseCode } from "./sae/sparse-code.js";
export { toDense, fromDense, nnz } from "./sae/sparse-code.js";
export { codeIsDense, setDenseCodeDensity } from "./sae/dense-code.js";
export { createSae, newSae } from "./sae/registry.js";
export { saeFromSaeLens, saeLensForm, foldInputScale, withInputScaleFolded, saeFromFileMap, saeLensFolderBytes } from "./sae/saelens-format.js";
export type { SaeMetadata, LoadedSae, SaveOptions } from "./sae/saelens-format.js";
export { activeDims } from "./sae/vaease.js";
export { prefixCode } from "./sae/matryoshka.js";
export { annealSchedule, type AnnealSchedule } from "./sae/p-annealing.js";

export { Adam } from "./train/adam.js";
export { createOptimizer, OPTIMIZERS, type Optimizer, type OptimizerKind } from "./train/optimizer.js";
export { ScheduleFreeSignSgd, signumDefaultLr } from "./train/schedule-free.js";
export { Muon, newtonSchulz } from "./train/muon.js";
export { TrainingCore, stepMetrics } from "./train/core.js";
export { InMemoryTraining, type InMemoryOptions, type StepRecord } from "./train/in-memory.js";
export { activationsFromBytes, activationsFromParquetBytes, type ActivationMatrix } from "./data/activation-matrix.js";
export { initializeSae, geometricMedian } from "./train/init.js";
export { SuperpositionSource } from "./synthetic/superposition.js";
export { SubspacesSource } from "./synthetic/subspaces.js";

export { ReconstructionMetrics, SparsityMetrics, densityHistogram } from "./eval/metrics.js";
export { fitLogisticRegression, predictLogistic, probeAccuracy, balancedSampleWeights } from "./eval/logistic-regression.js";
export { sparseProbing, oneVsRest, topKMeanDiff, type ClassRows, type ProbingResult } from "./eval/sparse-probing.js";
export { fitL1LogisticCsr } from "./eval/l1-logistic.js";
export { targetedProbePerturbation, ablateLatents } from "./eval/tpp.js";
export { spuriousCorrelationRemoval } from "./eval/scr.js";
export { measureAbsorption, wordAbsorption, type AbsorptionResult, type LabelledActivations } from "./eval/absorption.js";
export {
  AUTOINTERP_DEFAULTS, gatherExamples, interpretLatents, openAiChat, type AutoInterpConfig, type ChatFn, type LatentExamples,
} from "./eval/autointerp.js";
export { analyzeLatents, type LatentAnalysis } from "./analysis/latents.js";
export { exploreActivations, latentDetail, type Exploration, type LatentDetail } from "./analysis/explore.js";
export { analysisFigures, type NamedAnalysis } from "./analysis/figures.js";
export { tsne } from "./analysis/tsne.js";
export { kMeans } from "./analysis/kmeans.js";
export { histogramSvg, scatterSvg, barSvg, lineSvg, viridis } from "./analysis/svg.js";
export { dashboardHtml, latentDashboardHtml, DASHBOARD_STYLE } from "./analysis/dashboard-html.js";
export { FeatureCorrelations, type FeatureTables } from "./analysis/feature-tables.js";
export type { Dashboards, LatentDashboard } from "./analysis/dashboard.js";
export { trainingFigures, parseMetricsJsonl } from "./analysis/training-figures.js";

export { modelFromFiles, type LoadedModel, type ModelFilesOptions } from "./lm/model-files.js";
export { LanguageModel, expandHookPattern, partsForHooks } from "./lm/model.js";
export type { HookFn, ForwardOptions, KvCache, ModelParts } from "./lm/model.js";
export type { LmConfig } from "./lm/config.js";
export { HfTokenizer, type TextTokenizer } from "./lm/tokenizer.js";
export { Llama2cTokenizer } from "./lm/llama2c-tokenizer.js";
export { generate, steeringHook } from "./lm/generate.js";
export { packContexts, splitDocuments, type DocumentSplit } from "./data/contexts.js";
export { LmSource, type LmSourceOptions, type LmSourcePart } from "./data/lm-source.js";
export { evaluateSplice, evaluateSpliceOn, evaluateSplices, evaluateSplicesOn, spliceScores, type SpliceEvalResult, type SpliceTarget } from "./eval/splice.js";
export { promptView, type PromptToken } from "./analysis/prompt-view.js";
export { buildDashboards, DashboardCache } from "./analysis/dashboard.js";
export {
  neuronpediaBatch, neuronpediaFeature, latentBatches, hookLayer, decoderHeadShares,
  type NeuronpediaBatch, type NeuronpediaFeature, type NeuronpediaSource,
} from "./analysis/neuronpedia.js";
