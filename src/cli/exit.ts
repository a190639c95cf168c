/**
 * Kept apart from cli/index.ts so the commands can raise it without importing the CLI entry point.
 */
/** Raised by commands to exit with a message and a status, without a stack trace. */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}
