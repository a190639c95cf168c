/**
 * Scopes grant actions. A scope is an action name (`chat.create`), a family (`chat.*`, `tasks.*`) or
 * everything (`*`); `*` is the glob wildcard of `glob.ts`. Effective scopes are the intersection of
 * every layer (tier, tenant, project, key, token): a layer can only narrow what the layers above allow.
 */
import { compileGlobs, type StringMatcher } from './glob.js';

const SCOPE_RE = /^[A-Za-z0-9_.*-]+$/;

/** True when `scope` is syntactically a scope (letters, digits, `_ . - *`). */
export function isValidScope(scope: string): boolean {
  return SCOPE_RE.test(scope);
}

/** Compiles a scope list into a matcher over action names. */
export function compileScopes(scopes: readonly string[]): StringMatcher {
  return compileGlobs(scopes);
}
