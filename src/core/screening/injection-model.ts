/**
 * The classifier weights shipped in the package (`model/injection-model.json`, written by
 * `npm run train:screening`). Imported as a module, so nothing is read or fetched at run time;
 * decoded once, on first use (about 2 ms).
 */
import file from './model/injection-model.json' with { type: 'json' };
import { decodeInjectionModel, type InjectionModel, type InjectionModelFile } from './prompt-injection.js';

let decoded: InjectionModel | undefined;

export function shippedInjectionModel(): InjectionModel {
  decoded ??= decodeInjectionModel(file as InjectionModelFile);
  return decoded;
}

/** Training figures recorded in the shipped file (cross-validation and held-out). */
export function shippedInjectionModelMeta(): Record<string, unknown> {
  return (file as InjectionModelFile).meta ?? {};
}
