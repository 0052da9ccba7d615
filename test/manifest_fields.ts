/**
 * Kubernetes manifests as flat `path → value` maps, for comparing ours with flannel's field by
 * field: `DaemonSet/kube-flannel-ds spec.template.spec.containers[kube-flannel].image`. List
 * items with a `name` are keyed by it (containers, env, volumes, mounts, ports), other lists of
 * objects by position; lists of scalars (command, args, verbs) are one value, order included.
 * ConfigMap values holding JSON (`net-conf.json`) are flattened too, so formatting is ignored.
 */
import { loadAll } from "js-yaml";

/** A parsed YAML value (manifests are free-form). */
// deno-lint-ignore no-explicit-any
export type Yaml = any;

/** Every document of a multi-document YAML text. */
export function parseYamlDocuments(text: string): Yaml[] {
  return loadAll(text) as Yaml[];
}

/** A scalar, or a list of scalars. */
// deno-lint-ignore no-explicit-any
export type FieldValue = any;
export type Fields = Record<string, FieldValue>;

function key(k: string): string {
  return /^[\w-]+$/.test(k) ? `.${k}` : `["${k}"]`;
}

function flattenInto(out: Fields, path: string, v: Yaml): void {
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== "object")) {
      out[path] = v;
      return;
    }
    v.forEach((item, i) => {
      const id = item && typeof item === "object" && typeof item.name === "string"
        ? item.name
        : String(i);
      flattenInto(out, `${path}[${id}]`, item);
    });
  } else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) flattenInto(out, `${path}${key(k)}`, x);
  } else if (typeof v === "string" && /^\s*[{[]/.test(v)) {
    try {
      flattenInto(out, `${path}{}`, JSON.parse(v));
    } catch {
      out[path] = v;
    }
  } else {
    out[path] = v;
  }
}

/** Every field of every document, prefixed by `Kind/name`. */
export function manifestFields(docs: Yaml[]): Fields {
  const out: Fields = {};
  for (const doc of docs) {
    if (!doc) continue;
    const { kind, metadata } = doc;
    const rest = { ...doc };
    delete rest.kind;
    for (const [k, x] of Object.entries(rest)) {
      flattenInto(out, `${kind}/${metadata?.name} ${k}`, x);
    }
  }
  return out;
}

export interface FieldDifference {
  readonly path: string;
  /** Our value, undefined when we lack the field. */
  readonly ours?: FieldValue;
  /** flannel's value, undefined when flannel lacks it. */
  readonly flannel?: FieldValue;
}

/** Every path whose value differs, or that only one side has, sorted by path. */
export function diffFields(ours: Fields, flannel: Fields): FieldDifference[] {
  const paths = [...new Set([...Object.keys(ours), ...Object.keys(flannel)])].sort();
  const same = (p: string) => JSON.stringify(ours[p]) === JSON.stringify(flannel[p]);
  return paths.filter((p) => !same(p)).map((path) => ({
    path,
    ours: ours[path],
    flannel: flannel[path],
  }));
}
