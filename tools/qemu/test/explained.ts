import { QemuError } from '../src/index.js';

/** Awaits a run; a QemuError is rethrown with the tails of the console, stderr, server output and trace in its message, so a failing CI log shows them. */
export async function explained<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (err) {
    if (err instanceof QemuError) throw new Error(err.describe());
    throw err;
  }
}
