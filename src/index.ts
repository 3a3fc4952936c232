/** saekit's library entry point: everything the CLI does is callable from here. */
export * from "./core/kernels.js";
export { Rng, counterNormal } from "./core/rng.js";
export { Tensor, numel } from "./core/tensor.js";
export type { Shape } from "./core/tensor.js";
export {
  SafetensorsFile, SafetensorsError, readSafetensors, writeSafetensors, encodeSafetensors,
} from "./core/safetensors.js";
export type { TensorToWrite, TensorInfo } from "./core/safetensors.js";
export { writeFileAtomic, writeJsonAtomic } from "./core/atomic.js";
export { benchGemm, benchTopk } from "./bench/kernels.js";
