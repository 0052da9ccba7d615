/**
 * A small command-line parser with the syntax and messages of Go's `flag` package, which flanneld
 * uses: `-name` ≡ `--name`, `--name=value` or `--name value` (not for booleans), `--` ends the
 * flags, `-h`/`-help`/`--help` ask for help. Unlike Go, a positional argument is an error
 * (flanneld takes none), where Go would silently stop parsing there: `--ip-masq false` would
 * leave every later flag unread.
 */
import { parseGoBool, parseGoInt } from "./_go_strconv.ts";

/** A command-line mistake; `main.ts` prints it with the usage text and exits 2. */
export class FlagError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FlagError";
  }
}

/** `list` is a repeatable string flag: each occurrence appends one element. */
export type FlagKind = "string" | "int" | "bool" | "list";

interface FlagBase {
  readonly name: string;
  readonly usage: string;
  /** Placeholder shown in the usage text; Go's default is derived from the kind. */
  readonly typeName?: string;
}

export type FlagDef =
  | FlagBase & { readonly kind: "string"; readonly default: string }
  | FlagBase & { readonly kind: "int"; readonly default: number }
  | FlagBase & { readonly kind: "bool"; readonly default: boolean }
  | FlagBase & { readonly kind: "list"; readonly default: readonly string[] };

type FlagValue = string | number | boolean | string[];

/** Go's `UnquoteUsage` placeholder for each kind (`Var` flags show "value", booleans nothing). */
const TYPE_NAMES: Readonly<Record<FlagKind, string>> = {
  string: "string",
  int: "int",
  bool: "",
  list: "value",
};

function initialValue(def: FlagDef): FlagValue {
  return def.kind === "list" ? [...def.default] : def.default;
}

/** Flag definitions, their current values, and which were set explicitly. */
export class FlagSet {
  #defs = new Map<string, FlagDef>();
  #values = new Map<string, FlagValue>();
  #explicit = new Set<string>();

  constructor(defs: readonly FlagDef[]) {
    for (const def of defs) {
      if (this.#defs.has(def.name)) throw new TypeError(`Flag "${def.name}" is defined twice`);
      this.#defs.set(def.name, def);
      this.#values.set(def.name, initialValue(def));
    }
  }

  /** Definitions sorted by name, as Go's `VisitAll` visits them. */
  get defs(): FlagDef[] {
    return [...this.#defs.values()].sort((
      a,
      b,
    ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Names of the flags given on the command line or through {@linkcode set}. */
  get explicit(): ReadonlySet<string> {
    return this.#explicit;
  }

  def(name: string): FlagDef | undefined {
    return this.#defs.get(name);
  }

  /**
   * Parses `args`. Returns `{ help: true }` at the first `-h`/`-help`/`--help` (unless such a
   * flag is defined), ignoring the rest. Throws {@linkcode FlagError} with Go's wording.
   */
  parse(args: readonly string[]): { help: boolean } {
    let bareBool: string | undefined; // a boolean flag just given without "=value"
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (arg === "--") {
        if (i + 1 < args.length) throw unexpected(args[i + 1], undefined);
        break;
      }
      if (arg.length < 2 || arg[0] !== "-") throw unexpected(arg, bareBool);
      bareBool = undefined;
      const body = arg.slice(arg[1] === "-" ? 2 : 1);
      if (body === "" || body[0] === "-" || body[0] === "=") {
        throw new FlagError(`bad flag syntax: ${arg}`);
      }
      const eq = body.indexOf("=");
      const name = eq < 0 ? body : body.slice(0, eq);
      let value = eq < 0 ? undefined : body.slice(eq + 1);
      const def = this.#defs.get(name);
      if (def === undefined) {
        if (name === "h" || name === "help") return { help: true };
        throw new FlagError(`flag provided but not defined: -${name}`);
      }
      if (def.kind === "bool") {
        this.#setBool(def, value ?? "true");
        if (value === undefined) bareBool = name;
        continue;
      }
      if (value === undefined) {
        if (i + 1 >= args.length) throw new FlagError(`flag needs an argument: -${name}`);
        value = args[++i];
      }
      this.set(name, value);
    }
    return { help: false };
  }

  /**
   * Sets flag `name` from text with the flag's own parser, as Go's `FlagSet.Set` does; a `list`
   * flag gets one more element. Throws {@linkcode FlagError} whose `cause` holds the parse error.
   */
  set(name: string, text: string): void {
    const def = this.#defs.get(name);
    if (def === undefined) throw new FlagError(`no such flag -${name}`);
    if (def.kind === "bool") return this.#setBool(def, text);
    let value: FlagValue;
    try {
      value = def.kind === "int"
        ? parseGoInt(text)
        : def.kind === "list"
        ? [...this.list(name), text]
        : text;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new FlagError(`invalid value ${goQuote(text)} for flag -${name}: ${reason}`, {
        cause: err,
      });
    }
    this.#values.set(name, value);
    this.#explicit.add(name);
  }

  #setBool(def: FlagDef, text: string): void {
    let value: boolean;
    try {
      value = parseGoBool(text);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new FlagError(`invalid boolean value ${goQuote(text)} for -${def.name}: ${reason}`, {
        cause: err,
      });
    }
    this.#values.set(def.name, value);
    this.#explicit.add(def.name);
  }

  string(name: string): string {
    return this.#get(name, "string") as string;
  }

  int(name: string): number {
    return this.#get(name, "int") as number;
  }

  bool(name: string): boolean {
    return this.#get(name, "bool") as boolean;
  }

  list(name: string): string[] {
    return [...this.#get(name, "list") as string[]];
  }

  #get(name: string, kind: FlagKind): FlagValue {
    const def = this.#defs.get(name);
    if (def === undefined || def.kind !== kind) {
      throw new TypeError(
        `Cannot read flag "${name}" as ${kind}: it is ${def?.kind ?? "undefined"}`,
      );
    }
    return this.#values.get(name)!;
  }

  /**
   * The flag list in the layout of Go's `PrintDefaults`: `  -name type`, then the usage on the
   * next line after four spaces and a tab, then `(default ...)` unless the default is the zero
   * value; one-letter booleans keep their usage on the same line. Every line ends in "\n".
   */
  printDefaults(): string {
    let out = "";
    for (const def of this.defs) {
      let line = `  -${def.name}`;
      const typeName = def.typeName ?? TYPE_NAMES[def.kind];
      if (typeName !== "") line += ` ${typeName}`;
      line += line.length <= 4 ? "\t" : "\n    \t";
      line += def.usage.replaceAll("\n", "\n    \t");
      const shown = defaultText(def);
      if (shown !== undefined) line += ` (default ${shown})`;
      out += line + "\n";
    }
    return out;
  }
}

/** The `(default ...)` text, or undefined for a zero value (Go's `isZeroValue`). */
function defaultText(def: FlagDef): string | undefined {
  switch (def.kind) {
    case "string":
      return def.default === "" ? undefined : goQuote(def.default);
    case "int":
      return def.default === 0 ? undefined : String(def.default);
    case "bool":
      return def.default ? "true" : undefined;
    case "list":
      return def.default.length === 0 ? undefined : `[${def.default.join(" ")}]`;
  }
}

function unexpected(arg: string, bareBool: string | undefined): FlagError {
  const hint = bareBool === undefined
    ? "no positional arguments are accepted"
    : `a boolean flag takes its value after "=", as in --${bareBool}=${arg}`;
  return new FlagError(`unexpected argument ${goQuote(arg)}: ${hint}`);
}

/** Go's `%q` for the strings that appear in flag messages (JSON escaping is close enough). */
export function goQuote(text: string): string {
  return JSON.stringify(text);
}
