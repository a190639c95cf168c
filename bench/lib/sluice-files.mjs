// `sluice` from the per-file build (dist/cli/index.js) rather than the bundle bin/sluice.js runs:
// the same code, but a CPU profile then names each Sluice source file, not a bundle chunk (the
// bench's profile phase reads stages from those names).
import { main } from '../../dist/cli/index.js';

main(process.argv).catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
