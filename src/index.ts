/**
 * saekit's library entry point: everything the CLI does is a call from here.
 *
 *   kernels()            native (or reference) numeric kernels
 *   newSae / createSae   SAEs of every architecture; loadSae / saveSae (SAELens format),
 *                        openSae (also sparsify folders, dictionary_learning ae.pt, OpenAI .pt, GemmaScope params.npz)
 *   trainSae, trainSaes  the trainer (checkpoints, resume, metrics.jsonl); several SAEs on one stream;
 *   trainSaesUntil       the same, stoppable (an AbortSignal) with a checkpoint of the steps done
 *   loadModel            GPT-NeoX / GPT-2 / GPT-Neo / Llama / Gemma / llama2.c models with hooks
 *   harvest, StoreSource activation stores; LmSource: a model's activations computed as training reads them
 *   SpliceSource         end-to-end training: the model's loss with the SAE spliced in (SpliceBackward) trains it
 *   exportSaelensCache   a store written as SAELens' activation cache (Arrow), for training in Python
 *   evaluateSplice       CE loss recovered, KL score, FVU, L0, ...; measureSae the same short of CE/KL, no model
 *   runSparseProbing     SAEBench's k-sparse probing on a labelled text dataset
 *   runTpp, runScr       SAEBench's targeted probe perturbation and spurious correlation removal
 *   runAbsorption        SAEBench's feature absorption on the first-letter task
 *   runAutoInterp        SAEBench's autointerp, with any OpenAI-compatible LLM as the judge
 *   analyzeLatents       max activations, living features, t-SNE + k-means (the vSAE paper)
 *   buildDashboards      sae_vis-style feature dashboards; exportNeuronpedia writes them as Neuronpedia's batch files
 */
export * from "./core/kernels.js";
export { Rng, counterNormal } from "./core/rng.js";
export { Tensor, numel } from "./core/tensor.js";
export type { Shape } from "./core/tensor.js";
export {
  SafetensorsFile, SafetensorsError, readSafetensors, writeSafetensors, encodeSafetensors,
} from "./core/safetensors.js";
export type { TensorToWrite, TensorInfo } from "./core/safetensors.js";
export { writeFileAtomic, writeJsonAtomic } from "./core/atomic.js";

export * from "./sae/config.js";
export type { Sae, ParamSet, TrainStep, StepStats } from "./sae/sae.js";
export { workingBytes } from "./sae/sae.js";
export type { SparseCode } from "./sae/sparse-code.js";
export { codeIsDense, setDenseCodeDensity } from "./sae/dense-code.js";
export { createSae, newSae, withInferenceK } from "./sae/registry.js";
export { loadSae, saveSae, foldInputScale, withInputScaleFolded, saeFromFileMap, saeLensFolderBytes } from "./sae/saelens.js";
export type { SaeMetadata, LoadedSae } from "./sae/saelens.js";
export { openSae, fetchSae, saeFolderPaths, type SaeFormat } from "./sae/open.js";
export { resolveHubSae } from "./sae/hub.js";
export { loadSparsifySae, saveSparsifySae } from "./sae/sparsify.js";
export { loadDictionaryLearningSae } from "./sae/dictionary-learning.js";
export { loadOpenAiSae } from "./sae/openai.js";
export { INPUT_NORMALIZATIONS, type InputNormalization } from "./sae/input-norm.js";
export { TorchCheckpoint, TorchCheckpointError } from "./core/torch-checkpoint.js";
export { activeDims } from "./sae/vaease.js";
export { prefixCode } from "./sae/matryoshka.js";
export { annealSchedule, type AnnealSchedule } from "./sae/p-annealing.js";

export { trainSae, trainSaes, trainSaesUntil, TrainingInterrupted, evenSaveSteps, logSaveSteps, BEST_DIR, SNAPSHOTS_DIR, type RunSpec, type RowPart } from "./train/trainer.js";
export { TrainingCore, endToEndLossAndGrad, type Downstream } from "./train/core.js";
export { createOptimizer, OPTIMIZERS, type Optimizer, type OptimizerKind, type OptimizerState } from "./train/optimizer.js";
export { Adam, ADAM_DEFAULTS, type AdamOptions } from "./train/adam.js";
export { ScheduleFreeSignSgd, signumDefaultLr, SCHEDULE_FREE_MOMENTUM } from "./train/schedule-free.js";
export { Muon, newtonSchulz, MUON_DEFAULT_LR, MUON_DEFAULT_WEIGHT_DECAY, MUON_MOMENTUM } from "./train/muon.js";
export { InMemoryTraining, type InMemoryOptions, type StepRecord } from "./train/in-memory.js";
export { lrAt, defaultSchedule, LR_SCHEDULES, type LrSchedule, type LrScheduleKind } from "./train/schedule.js";
export type { TrainOptions, TrainResult, MetricsRecord } from "./train/trainer.js";

export type { ActivationSource } from "./data/source.js";
export { ArraySource } from "./data/array-source.js";
export { loadActivations } from "./data/activation-files.js";
export { activationsFromBytes, activationsFromParquetBytes, type ActivationMatrix } from "./data/activation-matrix.js";
export { openActivationSource } from "./data/open.js";
export { readDocuments, readItems, type DatasetItem } from "./data/text.js";
export { packContexts, splitDocuments, contextsFromItems, type DocumentSplit } from "./data/contexts.js";
export { pretokenize, TOKENS_COLUMN, type PretokenizeOptions } from "./data/pretokenize.js";
export { StoreSource } from "./data/store-source.js";
export { DatasetSource, type DatasetActivations, isActivationDataset } from "./data/dataset-source.js";
export { ParquetActivations, type ParquetChunk } from "./data/parquet-activations.js";
export { resolveHubActivations } from "./data/hub-activations.js";
export { ArrowActivations, type ArrowChunk } from "./data/arrow-activations.js";
export { ArrowIpcFile, type ArrowField, type ArrowType, type RecordBatch } from "./core/arrow-ipc.js";
export { LmSource, type LmSourceOptions } from "./data/lm-source.js";
export { SpliceSource, type SpliceSourceOptions } from "./data/splice-source.js";
export { SpliceBackward, type SpliceLossKind, type CleanPass } from "./lm/splice-backward.js";
export { MixedSource } from "./data/mixed-source.js";
export { readManifest } from "./data/store.js";
export { exportSaelensCache, type ExportCacheOptions, type ExportedCache } from "./data/saelens-cache.js";
export type { StoreManifest } from "./data/store.js";

export { SuperpositionSource, scoreFeatureRecovery } from "./synthetic/superposition.js";
export { SubspacesSource } from "./synthetic/subspaces.js";
export { scoreSynthetic, subspaceActiveDims } from "./synthetic/score.js";

export { loadModel, openTokenizer } from "./lm/load.js";
export { modelFromFiles, type LoadedModel, type ModelFilesOptions } from "./lm/model-files.js";
export { LanguageModel, expandHookPattern, partsForHooks } from "./lm/model.js";
export type { HookFn, ForwardOptions, KvCache, ModelParts } from "./lm/model.js";
export { configFromHf, PRESETS } from "./lm/config.js";
export type { LmConfig } from "./lm/config.js";
export { randomModel } from "./lm/random.js";
export { generate, sampleContexts } from "./lm/generate.js";
export { harvest, harvestSites, harvestStores, type HarvestOptions, type HarvestSettings, type HarvestSite } from "./lm/harvest.js";
export { openContexts, takeContexts } from "./lm/dataset.js";
export { specialTokens } from "./lm/special-tokens.js";

export { ReconstructionMetrics, SparsityMetrics } from "./eval/metrics.js";
export { evaluateSplice, evaluateSpliceOn, evaluateSplices, evaluateSplicesOn, type SpliceTarget } from "./eval/splice.js";
export { measureSae, measureSaes, measureSaesWithin, type MeasureResult } from "./eval/measure.js";
export {
  saeBenchCoreOutput, saeBenchSparseProbingOutput, saeBenchTppOutput, saeBenchScrOutput, saeBenchAbsorptionOutput, encoderStatistics,
  type SaeBenchRunInfo, type SaeBenchProbingInfo, type SaeBenchAbsorptionInfo,
} from "./eval/saebench.js";
export {
  fitLogisticRegression, predictLogistic, probeAccuracy, balancedSampleWeights, type LogisticModel,
} from "./eval/logistic-regression.js";
export {
  sparseProbing, oneVsRest, oneVsRestRows, gatherSplitRows, topKMeanDiff, type ClassRows, type ProbingResult,
} from "./eval/sparse-probing.js";
export {
  runSparseProbing, poolClassTexts, type SparseProbingRunOptions, type SparseProbingRunResult, type PoolTextOptions,
} from "./eval/sparse-probing-run.js";
export { targetedProbePerturbation, ablateLatents, topLatentsByEffect, type TppOptions, type TppResult } from "./eval/tpp.js";
export { runTpp, type TppRunResult } from "./eval/tpp-run.js";
export { spuriousCorrelationRemoval, scrQuadrants, quadrantTexts, type ScrPair, type ScrResult } from "./eval/scr.js";
export { runScr, type ScrRunOptions, type ScrRunResult } from "./eval/scr-run.js";
export { meanPooledActivations, probeTokens, forEachPaddedBatch } from "./eval/pooled-activations.js";
export { fitL1LogisticCsr, type L1LogisticModel } from "./eval/l1-logistic.js";
export {
  measureAbsorption, wordAbsorption, trainLetterProbes, encodeAll, f1Score, ABSORPTION_DEFAULTS,
  type AbsorptionOptions, type AbsorptionResult, type LetterAbsorption, type LabelledActivations,
} from "./eval/absorption.js";
export { runAbsorption, type AbsorptionRunOptions, type AbsorptionRunResult } from "./eval/absorption-run.js";
export { alphaTokens, spellingPrompts, wordActivations, LETTERS, FIRST_LETTER_TEMPLATE, type SpellingWord } from "./eval/first-letter.js";
export { readLabeledTexts, splitByClass, type LabeledText, type ClassSplit } from "./data/labeled.js";

export {
  AUTOINTERP_DEFAULTS, gatherExamples, interpretLatents, openAiChat, type AutoInterpConfig, type ChatFn, type LatentExamples,
} from "./eval/autointerp.js";
export { runAutoInterp, collectExamples, type AutoInterpRunResult } from "./eval/autointerp-run.js";
export { openAutoInterpJournal, type AutoInterpJournal } from "./eval/autointerp-journal.js";
export { analyzeLatents, type LatentAnalysis, type LatentAnalysisOptions } from "./analysis/latents.js";
export { exploreActivations, latentDetail, type Exploration, type LatentDetail } from "./analysis/explore.js";
export { writeAnalysisReport } from "./analysis/report.js";
export { analysisFigures, type NamedAnalysis } from "./analysis/figures.js";
export { tsne, type TsneMethod, type TsneOptions, type TsneResult } from "./analysis/tsne.js";
export { nearestNeighbors, type Neighbors } from "./analysis/neighbors.js";
export { kMeans, type KMeansResult } from "./analysis/kmeans.js";
export {
  buildDashboards, DashboardCache, logitEffects, parseLatentList, type Dashboards, type LatentDashboard, type DashboardOptions, type LogitEffects,
} from "./analysis/dashboard.js";
export {
  neuronpediaBatch, neuronpediaFeature, latentBatches, hookLayer, decoderHeadShares,
  type NeuronpediaBatch, type NeuronpediaFeature, type NeuronpediaSource,
} from "./analysis/neuronpedia.js";
export { exportNeuronpedia, type NeuronpediaExportOptions } from "./analysis/neuronpedia-export.js";
export { dashboardHtml, latentDashboardHtml, DASHBOARD_STYLE } from "./analysis/dashboard-html.js";
export { FeatureCorrelations, type FeatureTables } from "./analysis/feature-tables.js";
export { readRunMetrics, writeTrainingReport } from "./analysis/training-report.js";
export { maxCosines, matchSummary, type MaxCosines } from "./analysis/compare.js";
export { svgToPng, encodePng } from "./analysis/png.js";
export { svgToRaster } from "./analysis/svg-raster.js";
export { Raster } from "./analysis/raster.js";
export { trainingFigures, parseMetricsJsonl, type RunMetrics } from "./analysis/training-figures.js";

export { benchGemm, benchTopk } from "./bench/kernels.js";
export { benchTrain } from "./bench/train.js";
export { benchLm } from "./bench/lm.js";
export { benchTsne } from "./bench/tsne.js";
export { runSuperpositionDemo } from "./demo/superposition-demo.js";
export { runStories260kExample } from "./examples/stories260k.js";
