import { randomBytes } from 'node:crypto';

/** Short random ids for tenants, projects, admin users and requests: `<prefix>_<16 hex>`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}
