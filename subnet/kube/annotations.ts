/**
 * Node annotation names (flannel pkg/subnet/kube/annotations.go): `--kube-annotation-prefix` normalised as flannel's
 * `newAnnotations`, plus the suffixes flannel reads and writes.
 */

/** The annotation keys for one normalised prefix. */
export interface Annotations {
  /** The normalised prefix, e.g. `flannel.alpha.coreos.com/`. */
  readonly prefix: string;
  readonly subnetKubeManaged: string;
  readonly backendType: string;
  readonly backendData: string;
  readonly backendV6Data: string;
  readonly backendPublicIP: string;
  readonly backendPublicIPv6: string;
  readonly backendPublicIPOverwrite: string;
  readonly backendPublicIPv6Overwrite: string;
  readonly nodePublicIP: string;
  readonly nodePublicIPv6: string;
}

export const DEFAULT_ANNOTATION_PREFIX = "flannel.alpha.coreos.com";

const PREFIX_RE = /(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/;

/**
 * Normalises `--kube-annotation-prefix`: at most one `/`; none → append `/`; then a prefix ending
 * in neither `/` nor `-` gets `-`; the result must look like `fqdn/[a-z0-9_-]*`.
 * Throws `SyntaxError` with flannel's wording, the value and the fix.
 */
export function normalizeAnnotationPrefix(prefix: string): string {
  const slashes = prefix.split("/").length - 1;
  if (slashes > 1) {
    throw new SyntaxError(
      `subnet/kube: prefix can contain at most single slash: --kube-annotation-prefix "${prefix}"`,
    );
  }
  let p = slashes === 0 ? prefix + "/" : prefix;
  if (!p.endsWith("/") && !p.endsWith("-")) p += "-";
  if (!PREFIX_RE.test(p)) {
    throw new SyntaxError(
      `subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*: --kube-annotation-prefix ` +
        `"${prefix}" (lower-case DNS name with at least one dot, e.g. ${DEFAULT_ANNOTATION_PREFIX})`,
    );
  }
  return p;
}

/** Annotation keys under `--kube-annotation-prefix` (normalised here). */
export function annotationsFor(prefix = DEFAULT_ANNOTATION_PREFIX): Annotations {
  const p = normalizeAnnotationPrefix(prefix);
  return {
    prefix: p,
    subnetKubeManaged: p + "kube-subnet-manager",
    backendType: p + "backend-type",
    backendData: p + "backend-data",
    backendV6Data: p + "backend-v6-data",
    backendPublicIP: p + "public-ip",
    backendPublicIPv6: p + "public-ipv6",
    backendPublicIPOverwrite: p + "public-ip-overwrite",
    backendPublicIPv6Overwrite: p + "public-ipv6-overwrite",
    nodePublicIP: p + "node-public-ip",
    nodePublicIPv6: p + "node-public-ipv6",
  };
}
