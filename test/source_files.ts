/** The repository's own files, for tests that check rules over the whole tree. */

const ROOT = new URL("../", import.meta.url);

/**
 * Every file of the repository whose name matches `name` (hidden folders, `node_modules` and
 * `dist` left out), as `[path relative to the root, text]`.
 */
export async function* sourceFiles(
  name: RegExp,
  dir: URL = ROOT,
  rel = "",
): AsyncGenerator<[string, string]> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "dist") continue;
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* sourceFiles(name, new URL(`${e.name}/`, dir), path);
    else if (name.test(e.name)) yield [path, await Deno.readTextFile(new URL(e.name, dir))];
  }
}
