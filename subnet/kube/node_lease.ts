/**
 * Node ↔ lease (flannel pkg/subnet/kube/kube.go (nodeToLease)): peers' leases from their podCIDRs and annotations, and
 * the annotations this node writes for its own lease. Pure functions, no I/O.
 */
import {
  contains4,
  contains6,
  formatIP4,
  formatIP4Net,
  formatIP6,
  formatIP6Net,
  type IP4Net,
  type IP6Net,
  parseIP4,
  parseIP4Net,
  parseIP6,
  parseIP6Net,
} from "../ip.ts";
import { compactJSON } from "../json.ts";
import { quote } from "../../util/quote.ts";
import { publicIPProblem, publicIPv6Problem } from "../lease_check.ts";
import type { Lease, LeaseAttrs, NetworkConfig } from "../mod.ts";
import type { Annotations } from "./annotations.ts";
import type { Node } from "./types.ts";

/** The podCIDR(s) of a node, at most one per family. */
export interface PodCIDRs {
  v4?: IP4Net;
  v6?: IP6Net;
}

/**
 * Parses `spec.podCIDRs` (or `spec.podCIDR` when that list is empty) into at most one IPv4 and
 * one IPv6 network; the last of a family wins, as in flannel. Throws for ≥ 3 entries and for an
 * unparsable entry. An empty result means "not assigned".
 */
export function parsePodCIDRs(node: Node): PodCIDRs {
  const name = node.metadata?.name ?? "";
  const list = node.spec?.podCIDRs ?? [];
  const texts = list.length > 0 ? list : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  if (texts.length >= 3) {
    throw new Error(
      `node "${name}" pod cidrs should be IPv4/IPv6 only or dualstack: got ${quote(texts)}`,
    );
  }
  const out: PodCIDRs = {};
  for (const text of texts) {
    if (typeof text !== "string") {
      throw new Error(
        `node "${name}" has a pod CIDR that is not a string: ${quote(text)}`,
      );
    }
    if (text.includes(":")) {
      try {
        out.v6 = parseIP6Net(text);
      } catch (err) {
        throw new Error(`node "${name}" has an invalid pod CIDR ${quote(text)}`, { cause: err });
      }
    } else {
      try {
        out.v4 = parseIP4Net(text);
      } catch (err) {
        throw new Error(`node "${name}" has an invalid pod CIDR ${quote(text)}`, { cause: err });
      }
    }
  }
  return out;
}

/** Whether the node carries `<ap>kube-subnet-manager: "true"`. */
export function isManaged(node: Node, a: Annotations): boolean {
  return node.metadata?.annotations?.[a.subnetKubeManaged] === "true";
}

function backendDataOf(text: string | undefined, key: string): string {
  if (text === undefined) throw new Error(`annotation ${key} is missing`);
  try {
    return compactJSON(text);
  } catch (err) {
    throw new Error(`annotation ${key} is not JSON: ${quote(text)}`, {
      cause: err,
    });
  }
}

/**
 * A peer's lease from its node (flannel's `nodeToLease`). For each enabled family the node must
 * have a podCIDR of that family and a parsable `public-ip[v6]` annotation; backend data must be
 * JSON. Throws naming the node and the problem.
 */
export function nodeToLease(node: Node, config: NetworkConfig, a: Annotations): Lease {
  const name = node.metadata?.name ?? "";
  const ann = node.metadata?.annotations ?? {};
  const cidrs = parsePodCIDRs(node);
  const attrs: { -readonly [K in keyof LeaseAttrs]: LeaseAttrs[K] } = { publicIP: 0 };
  if (typeof ann[a.backendType] === "string") attrs.backendType = ann[a.backendType];
  let subnet: IP4Net = { ip: 0, prefix: 0 };
  let ipv6Subnet: IP6Net | undefined;
  if (config.enableIPv4) {
    const text = ann[a.backendPublicIP] ?? "";
    try {
      attrs.publicIP = parseIP4(text);
    } catch (err) {
      throw new Error(
        `node "${name}": annotation ${a.backendPublicIP} ${quote(text)} is not IPv4`,
        {
          cause: err,
        },
      );
    }
    attrs.backendData = backendDataOf(ann[a.backendData], a.backendData);
    if (!cidrs.v4) {
      throw new Error(`node "${name}": missing IPv4 address on n.Spec.PodCIDRs`);
    }
    subnet = cidrs.v4;
  }
  if (config.enableIPv6) {
    const text = ann[a.backendPublicIPv6] ?? "";
    try {
      attrs.publicIPv6 = parseIP6(text);
    } catch (err) {
      throw new Error(
        `node "${name}": annotation ${a.backendPublicIPv6} ${quote(text)} is not IPv6`,
        {
          cause: err,
        },
      );
    }
    attrs.backendV6Data = backendDataOf(ann[a.backendV6Data], a.backendV6Data);
    if (!cidrs.v6) {
      throw new Error(`node "${name}": missing IPv6 address on n.Spec.PodCIDRs`);
    }
    ipv6Subnet = cidrs.v6;
  }
  return {
    enableIPv4: config.enableIPv4,
    enableIPv6: config.enableIPv6,
    subnet,
    ...(ipv6Subnet && { ipv6Subnet }),
    attrs,
    source: nodeSource(name),
  };
}

/** A node as the `source` of its lease in log lines: `node "worker-1"`. */
export function nodeSource(name: string): string {
  return `node ${quote(name)}`;
}

/**
 * The own-node annotations that name addresses to advertise or use (`public-ip-overwrite`,
 * `node-public-ip` and their IPv6 variants) and are set to something no peer could reach:
 * anyone allowed to patch nodes can set them. One warning per bad annotation; the manager ignores
 * them (as if unset).
 */
export function badAddressAnnotations(node: Node, a: Annotations): Map<string, string> {
  const ann = node.metadata?.annotations ?? {};
  const bad = new Map<string, string>();
  const keys = [
    [a.backendPublicIPOverwrite, 4],
    [a.nodePublicIP, 4],
    [a.backendPublicIPv6Overwrite, 6],
    [a.nodePublicIPv6, 6],
  ] as const;
  for (const [key, family] of keys) {
    const text = ann[key];
    if (!text) continue;
    let why: string | undefined;
    try {
      why = family === 4 ? publicIPProblem(parseIP4(text)) : publicIPv6Problem(parseIP6(text));
    } catch {
      why = `is not an IPv${family} address`;
    }
    if (why) {
      bad.set(
        key,
        `Ignoring annotation ${key} ${quote(text)} on node ${quote(name(node))}: it ${why}`,
      );
    }
  }
  return bad;
}

function name(node: Node): string {
  return node.metadata?.name ?? "";
}

/** Whether two leases advertise the same thing (subnets and every attribute). */
export function sameLease(a: Lease | undefined, b: Lease | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const x = a.attrs, y = b.attrs;
  return a.enableIPv4 === b.enableIPv4 && a.enableIPv6 === b.enableIPv6 &&
    a.subnet.ip === b.subnet.ip && a.subnet.prefix === b.subnet.prefix &&
    a.ipv6Subnet?.ip === b.ipv6Subnet?.ip && a.ipv6Subnet?.prefix === b.ipv6Subnet?.prefix &&
    x.publicIP === y.publicIP && x.publicIPv6 === y.publicIPv6 &&
    x.backendType === y.backendType && x.backendData === y.backendData &&
    x.backendV6Data === y.backendV6Data;
}

/**
 * The annotations to set on the own node for `attrs` (flannel pkg/subnet/kube/kube.go (AcquireLease) steps 5-6), or `undefined`
 * when the node already carries them. Values are flannel's byte for byte: backend data as the
 * JSON text (`null` when none), public IPs in Go's text form, `public-ip` taken from
 * `public-ip-overwrite` when that is set to a usable address (`badAddressAnnotations`).
 */
export function ownAnnotations(
  node: Node,
  attrs: LeaseAttrs,
  a: Annotations,
): Record<string, string> | undefined {
  const ann = node.metadata?.annotations ?? {};
  const bad = badAddressAnnotations(node, a);
  const bd = attrs.backendData ?? "null";
  const v6bd = attrs.backendV6Data ?? "null";
  const type = attrs.backendType ?? "";
  const ip = formatIP4(attrs.publicIP);
  const ip6 = attrs.publicIPv6 === undefined ? undefined : formatIP6(attrs.publicIPv6);
  const usable = (key: string) => bad.has(key) ? "" : ann[key] ?? "";
  const overwrite = usable(a.backendPublicIPOverwrite);
  const overwrite6 = usable(a.backendPublicIPv6Overwrite);
  const stale4 = ann[a.backendData] !== bd || ann[a.backendType] !== type ||
    ann[a.backendPublicIP] !== ip || ann[a.subnetKubeManaged] !== "true" ||
    (overwrite !== "" && overwrite !== ip);
  const stale6 = ip6 !== undefined &&
    (ann[a.backendV6Data] !== v6bd || ann[a.backendType] !== type ||
      ann[a.backendPublicIPv6] !== ip6 || ann[a.subnetKubeManaged] !== "true" ||
      (overwrite6 !== "" && overwrite6 !== ip6));
  if (!stale4 && !stale6) return undefined;

  const next: Record<string, string> = { [a.backendType]: type };
  if (!(type === "vxlan" && bd === "null")) {
    next[a.backendData] = bd;
    next[a.backendPublicIP] = overwrite !== "" ? overwrite : ip;
  }
  const writes6 = (type === "vxlan" && v6bd !== "null") ||
    (type === "wireguard" && v6bd !== "null" && ip6 !== undefined) ||
    ((type === "host-gw" || type === "extension") && ip6 !== undefined);
  if (writes6) {
    next[a.backendV6Data] = v6bd;
    next[a.backendPublicIPv6] = overwrite6 !== "" ? overwrite6 : (ip6 ?? "");
  }
  next[a.subnetKubeManaged] = "true";
  // Only what changes goes into the patch (the two-way diff flannel computes).
  const diff: Record<string, string> = {};
  for (const [k, v] of Object.entries(next)) if (ann[k] !== v) diff[k] = v;
  return Object.keys(diff).length > 0 ? diff : undefined;
}

/**
 * The strategic-merge patch body for annotation changes: `{"metadata":{"annotations":{...}}}`
 * with keys sorted, as Go marshals the map in `CreateTwoWayMergePatch`.
 */
export function annotationPatch(changes: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(changes).sort(([x], [y]) => x < y ? -1 : 1));
  return JSON.stringify({ metadata: { annotations: sorted } });
}

/** A node's podCIDRs for messages: `podCIDRs 10.244.1.0/24`, or `no podCIDRs`. */
function describeCIDRs(cidrs: PodCIDRs): string {
  const texts = [
    ...(cidrs.v4 ? [formatIP4Net(cidrs.v4)] : []),
    ...(cidrs.v6 ? [formatIP6Net(cidrs.v6)] : []),
  ];
  return texts.length > 0 ? `podCIDRs ${texts.join(",")}` : "no podCIDRs";
}

/**
 * Checks that the own podCIDRs fit the network config (our addition: flannel only checks inside
 * `AcquireLease`, with no hint): every enabled family needs a podCIDR inside its Network.
 * Returns the own lease subnets; throws naming the node, both CIDRs and the fix.
 */
export function checkOwnPodCIDRs(
  nodeName: string,
  cidrs: PodCIDRs,
  config: NetworkConfig,
  netConfigPath: string,
): { subnet: IP4Net; ipv6Subnet?: IP6Net } {
  let subnet: IP4Net = { ip: 0, prefix: 0 };
  let ipv6Subnet: IP6Net | undefined;
  if (config.enableIPv4) {
    const network = config.network;
    if (!cidrs.v4) {
      throw new Error(
        `node "${nodeName}" has no IPv4 pod CIDR (${describeCIDRs(cidrs)}) but IPv4 is enabled ` +
          `in ${netConfigPath} ("EnableIPv4" defaults to true): give the node an IPv4 podCIDR ` +
          `(kube-controller-manager --allocate-node-cidrs --cluster-cidr=<IPv4 CIDR>[,<IPv6 CIDR>], ` +
          `kubeadm --pod-network-cidr; a node's podCIDRs cannot change, so re-register it) or, ` +
          `for an IPv6-only cluster, set "EnableIPv4": false`,
      );
    }
    if (!network) {
      throw new Error(`no "Network" in ${netConfigPath} although IPv4 is enabled`);
    }
    if (cidrs.v4.prefix < network.prefix || !contains4(network, cidrs.v4.ip)) {
      throw new Error(
        `subnet "${formatIP4Net(network)}" specified in the flannel net config doesn't contain ` +
          `"${formatIP4Net(cidrs.v4)}" PodCIDR of the "${nodeName}" node: set "Network" in ` +
          `${netConfigPath} (ConfigMap kube-flannel-cfg, key net-conf.json) to the cluster's pod ` +
          `CIDR (kube-controller-manager --cluster-cidr, kubeadm --pod-network-cidr), or give the ` +
          `node a podCIDR inside ${formatIP4Net(network)}`,
      );
    }
    subnet = cidrs.v4;
  }
  if (config.enableIPv6) {
    const network = config.ipv6Network;
    if (!cidrs.v6) {
      const fix = config.enableIPv4
        ? `or, for an IPv4-only cluster, set "EnableIPv6": false`
        : `or, for an IPv4 cluster, set "EnableIPv4": true and "EnableIPv6": false`;
      throw new Error(
        `node "${nodeName}" has no IPv6 pod CIDR (${describeCIDRs(cidrs)}) but "EnableIPv6" is ` +
          `true in ${netConfigPath}: give the node an IPv6 podCIDR (dual stack: ` +
          `kube-controller-manager --cluster-cidr=<IPv4 CIDR>,<IPv6 CIDR>, kubeadm ` +
          `--pod-network-cidr=<IPv4 CIDR>,<IPv6 CIDR>; a node's podCIDRs cannot change, so ` +
          `re-register it) ${fix}`,
      );
    }
    if (!network) {
      throw new Error(`no "IPv6Network" in ${netConfigPath} although IPv6 is enabled`);
    }
    if (cidrs.v6.prefix < network.prefix || !contains6(network, cidrs.v6.ip)) {
      throw new Error(
        `subnet "${formatIP6Net(network)}" specified in the flannel net config doesn't contain ` +
          `"${formatIP6Net(cidrs.v6)}" PodCIDR of the "${nodeName}" node: set "IPv6Network" in ` +
          `${netConfigPath} (ConfigMap kube-flannel-cfg, key net-conf.json) to the cluster's IPv6 ` +
          `pod CIDR, or give the node a podCIDR inside ${formatIP6Net(network)}`,
      );
    }
    ipv6Subnet = cidrs.v6;
  }
  return { subnet, ...(ipv6Subnet && { ipv6Subnet }) };
}

/**
 * The VTEP MAC inside backend data such as `{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}`: the
 * `VtepMAC` key (any case) of the JSON, else flannel's split on `:"` (flannel pkg/subnet/kube/kube.go).
 */
export function macFromBackendData(text: string | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const obj = JSON.parse(text);
    if (obj && typeof obj === "object" && !Array.isArray(obj)) {
      for (const [k, v] of Object.entries(obj)) {
        if (k.toLowerCase() === "vtepmac" && typeof v === "string" && v !== "") return v;
      }
      return undefined;
    }
  } catch {
    // fall through to flannel's string handling
  }
  const parts = text.replace(/^["}]+|["}]+$/g, "").split(':"');
  return parts.length === 2 && parts[1] !== "" ? parts[1] : undefined;
}
