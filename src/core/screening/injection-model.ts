/**
 * The classifier weights shipped in the package (`model/injection-model.ts`, written by
 * `npm run train:screening`: base64 int16 weights in a module). Imported like any module, so
 * nothing is read or fetched at run time; decoded once, on first use (a few ms).
 */
import file from './model/injection-model.js';
import { decodeInjectionModel, type InjectionModel } from './prompt-injection.js';

let decoded: InjectionModel | undefined;

export function shippedInjectionModel(): InjectionModel {
  decoded ??= decodeInjectionModel(file);
  return decoded;
}

/** Training figures recorded in the shipped file (cross-validation and held-out). */
export function shippedInjectionModelMeta(): Record<string, unknown> {
  return file.meta ?? {};
}
