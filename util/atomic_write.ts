/**
 * Atomic file replacement, as flannel's subnet.env writer does it with `renameio.WriteFile`
 * (flannel pkg/subnet/subnet.go (WriteSubnetFile)): readers see either the old file or the whole new one, never a partial write.
 *
 * Unlike renameio, the temporary file always lives in the target's directory: flannel first
 * probes whether `$TMPDIR` is on the same filesystem, but a sibling temp file is always
 * rename-safe, so the probe buys nothing.
 */
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Permission bits for a new file, applied exactly (umask ignored); default 0o644. */
  mode?: number;
}

const encoder = new TextEncoder();

/** A random non-negative 63-bit integer in decimal, like Go's `rand.Int63()`. */
function randomInt63(): string {
  const [n] = crypto.getRandomValues(new BigUint64Array(1));
  return String(n >> 1n);
}

/** Permission bits of `path` when it is an existing regular file. */
async function existingMode(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && info.mode !== null ? info.mode & 0o777 : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `.<basename><random decimal>` exclusively next to `path`, retrying on collisions. */
async function createTemp(path: string): Promise<{ file: Deno.FsFile; tempPath: string }> {
  const prefix = join(dirname(path), "." + basename(path));
  for (let attempt = 0;; attempt++) {
    const tempPath = prefix + randomInt63();
    try {
      const file = await Deno.open(tempPath, { write: true, createNew: true, mode: 0o600 });
      return { file, tempPath };
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists) || attempt >= 100) throw err;
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * Replaces `path` with `data` atomically: `mkdir -p` the parent (0755), write a temporary
 * sibling, fsync, close, rename over the target. A new file gets exactly `opts.mode` (0644 by
 * default) regardless of umask; an existing regular file keeps its permission bits. On failure
 * the temporary file is removed and the error rethrown wrapped, naming `path`.
 */
export async function atomicWriteFile(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let tempPath: string | undefined;
  let file: Deno.FsFile | undefined;
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const mode = (await existingMode(path)) ?? opts.mode ?? 0o644;
    ({ file, tempPath } = await createTemp(path));
    await Deno.chmod(tempPath, mode);
    await writeAll(file, bytes);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tempPath, path);
  } catch (err) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    if (tempPath !== undefined) await Deno.remove(tempPath).catch(() => {});
    throw new Error(`Cannot write file "${path}" atomically`, { cause: err });
  }
}
