/** Runs `vfio-ts` inside the test process, capturing what it writes. */
import { run } from '@vfio-ts/cli';

/** The CLI in this process (a node start costs seconds under TCG): its exit code and what it wrote. */
export async function vfioTs(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const sink = () => {
    const s = {
      text: '',
      isTTY: false,
      write(chunk: string) {
        s.text += chunk;
        return true;
      },
    };
    return s;
  };
  const out = sink();
  const err = sink();
  const status = await run(args, {
    stdout: out as unknown as NodeJS.WriteStream,
    stderr: err as unknown as NodeJS.WriteStream,
  });
  return { status, stdout: out.text, stderr: err.text };
}
