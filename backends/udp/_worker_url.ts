/**
 * Where the udp data path's worker module is, wherever this code runs from: beside this file in
 * the source tree, in a moved copy of it, and in a `deno compile` binary (which embeds it through
 * `--include backends/udp/_worker.ts`); or, once bundled into one JavaScript file (`deno task
 * bundle`), the worker's own bundle {@link WORKER_BUNDLE} beside that file.
 */
export const WORKER_BUNDLE = "flanneld-udp-worker.js";

/** `base` is the URL of the module asking: this one, or the bundle it was bundled into. */
export function workerUrl(base: string = import.meta.url): URL {
  return new URL(base.endsWith(".ts") ? "./_worker.ts" : `./${WORKER_BUNDLE}`, base);
}
