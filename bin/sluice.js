#!/usr/bin/env node
// The bundle of src/cli (scripts/build.mjs): one load instead of hundreds of module files.
import { main } from '../dist/bundle/index.js';

main(process.argv).catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
