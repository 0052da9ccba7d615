/**
 * One-line mutations of important behaviours, for `deno task mutate` (`scripts/mutate.ts`): each
 * must make at least one of its fast (non-root) test files fail. `find` must occur exactly once
 * in `file` (`test/mutations_test.ts` checks that, so the list cannot rot). A new behaviour adds
 * its mutation here.
 */

export interface Mutation {
  /** What stops working, in a few words. */
  readonly behaviour: string;
  readonly file: string;
  /** Text that occurs exactly once in `file`. */
  readonly find: string;
  readonly replace: string;
  /** Fast test files that must catch it. */
  readonly tests: readonly string[];
}

const ETCD_MANAGER = ["subnet/etcd/manager_test.ts"];
const VXLAN = ["backends/vxlan/network_test.ts"];

export const mutations: readonly Mutation[] = [
  // subnet/: wire formats, config, allocation, renewal, lease watch.
  {
    behaviour: "subnet key separator is '-'",
    file: "subnet/subnet_key.ts",
    find: "const key = `${formatIP4(subnet.ip)}-${subnet.prefix}`;",
    replace: "const key = `${formatIP4(subnet.ip)}/${subnet.prefix}`;",
    tests: ["subnet/subnet_key_test.ts"],
  },
  {
    behaviour: "/32 subnet keys are refused like flannel's",
    file: "subnet/subnet_key.ts",
    find: "parsePrefix(len4, 5)",
    replace: "parsePrefix(len4, 6)",
    tests: ["subnet/subnet_key_test.ts"],
  },
  {
    behaviour: "lease value writes PublicIPv6 null",
    file: "subnet/lease_attrs.ts",
    find: 'out += a.publicIPv6 === undefined ? "null" :',
    replace: "out += a.publicIPv6 === undefined ? '\"\"' :",
    tests: ["subnet/lease_attrs_test.ts"],
  },
  {
    behaviour: "lease value has no whitespace",
    file: "subnet/lease_attrs.ts",
    find: 'out += `,"BackendType":${',
    replace: 'out += `, "BackendType":${',
    tests: ["subnet/lease_attrs_test.ts"],
  },
  {
    behaviour: "subnet.env FLANNEL_SUBNET is the first address",
    file: "subnet/subnet_env.ts",
    find: "const first = { ip: (lease.subnet.ip + 1) >>> 0,",
    replace: "const first = { ip: lease.subnet.ip >>> 0,",
    tests: ["subnet/subnet_env_test.ts"],
  },
  {
    behaviour: "subnet.env FLANNEL_IPMASQ",
    file: "subnet/subnet_env.ts",
    find: "out += `FLANNEL_IPMASQ=${ipMasq}\\n`;",
    replace: "out += `FLANNEL_IPMASQ=${!ipMasq}\\n`;",
    tests: ["subnet/subnet_env_test.ts"],
  },
  {
    behaviour: "default SubnetLen for small networks is prefix + 2",
    file: "subnet/config.ts",
    find: "d.subnetLen = net.prefix <= 22 ? 24 : net.prefix + 2;",
    replace: "d.subnetLen = net.prefix <= 22 ? 24 : net.prefix + 1;",
    tests: ["subnet/config_test.ts"],
  },
  {
    behaviour: "a missing Backend means udp",
    file: "subnet/config.ts",
    find: 'if (raw === undefined) return { backendType: "udp", backend: {} };',
    replace: 'if (raw === undefined) return { backendType: "vxlan", backend: {} };',
    tests: ["subnet/config_test.ts"],
  },
  {
    behaviour: "Backend.Type is case-insensitive",
    file: "subnet/config.ts",
    find: "backendType = decodeJSONString(type.raw).toLowerCase();",
    replace: "backendType = decodeJSONString(type.raw);",
    tests: ["subnet/config_test.ts"],
  },
  {
    behaviour: "free subnets skip those overlapping other-sized leases",
    file: "subnet/allocate.ts",
    find: "if (sameSize.has(ip) || others.some((o) => overlaps4(o, candidate))) continue;",
    replace: "if (sameSize.has(ip)) continue;",
    tests: ["subnet/allocate_test.ts"],
  },
  {
    behaviour: "SubnetMax is inclusive",
    file: "subnet/allocate.ts",
    find: "subnet.ip <= config.subnetMax && (config.network",
    replace: "subnet.ip < config.subnetMax && (config.network",
    tests: ["subnet/allocate_test.ts"],
  },
  {
    behaviour: "renewal happens the margin before expiry",
    file: "subnet/renew.ts",
    find: "return Math.max(0, expiration - marginMinutes * 60_000 - now);",
    replace: "return Math.max(0, expiration - now);",
    tests: ["subnet/renew_test.ts"],
  },
  {
    behaviour: "a re-list reports removed leases",
    file: "subnet/lease_watcher.ts",
    find: 'if (!next.has(key)) batch.push({ type: "removed", lease: old });',
    replace: "",
    tests: ["subnet/lease_watcher_test.ts"],
  },
  {
    behaviour: "a re-list reports leases whose attributes changed",
    file: "subnet/lease_watcher.ts",
    find: "if (!old || (this.#reportChanged && !sameAttrs(old, lease))) {",
    replace: "if (!old) {",
    tests: ["subnet/lease_watcher_test.ts"],
  },
  {
    behaviour: "lease value writes BackendV6Data",
    file: "subnet/lease_attrs.ts",
    find: 'out += `,"BackendV6Data":${',
    replace: 'out += `,"BackendDataV6":${',
    tests: ["subnet/lease_attrs_test.ts"],
  },
  {
    behaviour: "lease value parses BackendV6Data",
    file: "subnet/lease_attrs.ts",
    find: 'foldEquals(key, "BackendV6Data")',
    replace: 'foldEquals(key, "BackendDataV6")',
    tests: ["subnet/lease_attrs_test.ts"],
  },
  {
    behaviour: "a peer's IPv6 subnet must be inside the IPv6Network",
    file: "subnet/lease_check.ts",
    find: "if (network && (net.prefix < network.prefix || !contains6(network, net.ip))) {",
    replace: "if (false) {",
    tests: ["subnet/lease_check_test.ts"],
  },
  {
    behaviour: "a peer's IPv6 subnet must not overlap ours",
    file: "subnet/lease_check.ts",
    find: "if (own.ipv6Subnet && overlaps6(net, own.ipv6Subnet)) {",
    replace: "if (false) {",
    tests: ["subnet/lease_check_test.ts"],
  },
  // subnet/etcd/manager.ts
  {
    behaviour: "the first lease watch reuses the acquisition listing",
    file: "subnet/etcd/manager.ts",
    find: "| undefined = this.#takeRecentListing();",
    replace: "| undefined = undefined;",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "a failed renewal is retried",
    file: "subnet/etcd/manager.ts",
    find: "expiration = this.#now() + RENEW_RETRY_MS + this.#margin * 60_000;",
    replace: "expiration = undefined;",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "the old etcd lease is revoked on reuse",
    file: "subnet/etcd/manager.ts",
    find: "await this.#kv.revokeLease(stored.kv.lease).catch(() => {});",
    replace: "",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "the old etcd lease is revoked on renewal",
    file: "subnet/etcd/manager.ts",
    find: 'if (old !== "0") await this.#kv.revokeLease(old).catch(() => {});',
    replace: "",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "the renewal metric's label",
    file: "subnet/etcd/manager.ts",
    find: 'metrics.leaseRenewals.inc({ result: "success" });',
    replace: 'metrics.leaseRenewals.inc({ result: "ok" });',
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "a bad subnet key or value is skipped with a warning",
    file: "subnet/etcd/manager.ts",
    find: "if (this.#undecodable.get(kv.key) !== problem) this.#log.warn(problem);",
    replace: "",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "a watch that fell behind compaction re-lists",
    file: "subnet/etcd/manager.ts",
    find: "              break relist;",
    replace: "              break;",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "a reservation stays a reservation",
    file: "subnet/etcd/manager.ts",
    find: 'const reservation = stored.kv.lease === "0";',
    replace: "const reservation = false;",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "the own key deleted ends completeLease with LeaseRevokedError",
    file: "subnet/etcd/manager.ts",
    find: 'if (resp.events.some((e) => e.type === "delete" && e.kv.key === key)) return "revoked";',
    replace: "",
    tests: ETCD_MANAGER,
  },
  {
    behaviour: "of two dual-stack keys sharing a subnet the later-created yields",
    file: "subnet/etcd/manager.ts",
    find: "l.key !== key && l.kv.createRevision < ours.kv.createRevision &&",
    replace: "l.key !== key && l.kv.createRevision > ours.kv.createRevision &&",
    tests: ETCD_MANAGER,
  },
  // subnet/kube/
  {
    behaviour: "kube annotation names",
    file: "subnet/kube/annotations.ts",
    find: 'backendPublicIP: p + "public-ip",',
    replace: 'backendPublicIP: p + "public_ip",',
    tests: ["subnet/kube/annotations_test.ts"],
  },
  {
    behaviour: "kube IPv6-only vxlan writes no public-ip or backend-data annotation",
    file: "subnet/kube/node_lease.ts",
    find: 'if (!(type === "vxlan" && bd === "null")) {',
    replace: "if (true) {",
    tests: ["subnet/kube/node_lease_test.ts"],
  },
  {
    behaviour: "the kube manager holds the lease until aborted",
    file: "subnet/kube/manager.ts",
    find: "    if (signal?.aborted) return;\n    await new Promise<void>(",
    replace: "    return;\n    await new Promise<void>(",
    tests: ["test/kube_test.ts"],
  },
  {
    behaviour: "the first node list comes from the API server's watch cache",
    file: "subnet/kube/manager.ts",
    find: "    let fromCache = true;",
    replace: "    let fromCache = false;",
    tests: ["test/kube_test.ts"],
  },
  {
    behaviour: "the node re-list after 410 Gone is a consistent read",
    file: "subnet/kube/manager.ts",
    find: "            fromCache = false;\n",
    replace: "",
    tests: ["test/kube_test.ts"],
  },
  // agent.ts
  {
    behaviour: "the agent awaits every loop it started before returning",
    file: "agent.ts",
    find: "    await Promise.all(loops);",
    replace: "",
    tests: ["test/agent_shutdown_test.ts"],
  },
  // cli/
  {
    behaviour: "FLANNELD_* variable names",
    file: "cli/options.ts",
    find: 'return "FLANNELD_" + name.toUpperCase().replaceAll(/[-.]/g, "_");',
    replace: 'return "FLANNEL_" + name.toUpperCase().replaceAll(/[-.]/g, "_");',
    tests: ["cli/options_test.ts"],
  },
  {
    behaviour: "the etcd password is redacted in the log",
    file: "cli/options.ts",
    find: 'etcdPassword: o.etcdPassword === "" ? "" : REDACTED,',
    replace: "etcdPassword: o.etcdPassword,",
    tests: ["cli/options_test.ts"],
  },
  // backends/
  {
    behaviour: "lost kernel notifications (ENOBUFS) are counted",
    file: "backends/reconcile_loop.ts",
    find: "metrics.kernelEventOverflows.inc({ kind: policy.kind });",
    replace: "",
    tests: ["backends/reconcile_loop_test.ts"],
  },
  {
    behaviour: "a dual-stack network reports its peers per family",
    file: "backends/reconcile_loop.ts",
    find: 'family: options.policy.family === 6 ? "ipv6" : "ipv4"',
    replace: 'family: "ipv4"',
    tests: ["backends/host_gw_test.ts"],
  },
  {
    behaviour: "host-gw routes via the peer's public IP",
    file: "backends/host_gw.ts",
    find: "gateway: formatIP4(peer.attrs.publicIP),",
    replace: 'gateway: "192.168.1.12",',
    tests: ["backends/host_gw_test.ts"],
  },
  {
    behaviour: "DirectRouting never uses the own VXLAN device",
    file: "backends/vxlan/network.ts",
    find:
      'if ((r.type ?? "unicast") !== "unicast" || r.index === this.#devIndex) return undefined;',
    replace: 'if ((r.type ?? "unicast") !== "unicast") return undefined;',
    tests: VXLAN,
  },
  {
    behaviour: "vxlan leaves the all-zero MAC's flood list alone",
    file: "backends/vxlan/network.ts",
    find: "if (this.#byMac.has(f.mac) || f.mac === ZERO_MAC) continue;",
    replace: "if (this.#byMac.has(f.mac)) continue;",
    tests: VXLAN,
  },
  {
    behaviour: "vxlan sweeps only once the lease list is known",
    file: "backends/vxlan/network.ts",
    find: "if (pass.synced) await this.#removeStale(kernel, pass);",
    replace: "await this.#removeStale(kernel, pass);",
    tests: VXLAN,
  },
  {
    behaviour: "vxlan rewrites an FDB entry that points at another host",
    file: "backends/vxlan/peers.ts",
    find: "return have !== undefined && have.mac === want.mac && have.dst === want.dst &&",
    replace: "return have !== undefined && have.mac === want.mac &&",
    tests: VXLAN,
  },
  {
    behaviour: "vxlan BackendData bytes",
    file: "backends/vxlan/backend_data.ts",
    find: 'return `{"VNI":${data.vni},"VtepMAC":"${data.vtepMac}"}`;',
    replace: 'return `{"VNI":${data.vni}, "VtepMAC":"${data.vtepMac}"}`;',
    tests: ["backends/vxlan/backend_data_test.ts"],
  },
  {
    behaviour: "a VTEP MAC must be unicast",
    file: "backends/vxlan/backend_data.ts",
    find: "if (parseInt(groups[0], 16) & 1) {",
    replace: "if (false) {",
    tests: ["backends/vxlan/backend_data_test.ts"],
  },
  // backends/: dual stack
  {
    behaviour: "host-gw IPv6 routes via the peer's PublicIPv6",
    file: "backends/host_gw.ts",
    find: "gateway: formatIP6(peer.attrs.publicIPv6),",
    replace: 'gateway: "fd00:1::12",',
    tests: ["backends/host_gw_test.ts"],
  },
  {
    behaviour: "vxlan over an IPv6 underlay costs 70 bytes",
    file: "backends/vxlan/mod.ts",
    find: "export const VXLAN6_OVERHEAD = 70;",
    replace: "export const VXLAN6_OVERHEAD = 50;",
    tests: VXLAN,
  },
  {
    behaviour: "dual-stack FLANNEL_MTU is the smallest device MTU",
    file: "backends/vxlan/mod.ts",
    find: "mtu = Math.min(mtu, link.mtu);",
    replace: "mtu = Math.max(mtu === Infinity ? 0 : mtu, link.mtu);",
    tests: VXLAN,
  },
  {
    behaviour: "the IPv6 vxlan device is flannel-v6.<VNI>",
    file: "backends/vxlan/mod.ts",
    find: "`flannel-v6.${cfg.vni}`;",
    replace: "`flannel6.${cfg.vni}`;",
    tests: VXLAN,
  },
  {
    behaviour: "the IPv6 vxlan device's address is <IPv6 subnet>/128",
    file: "backends/vxlan/device.ts",
    find: "text: `${formatIP6(ip)}/128`,",
    replace: "text: `${formatIP6(ip)}/64`,",
    tests: VXLAN,
  },
  // kernel/ codecs
  {
    behaviour: "route onlink flag on the wire",
    file: "kernel/netlink/_route.ts",
    find: "flags: route.onlink ? RTNH_F_ONLINK : 0,",
    replace: "flags: 0,",
    tests: ["kernel/netlink/_route_test.ts"],
  },
  {
    behaviour: "a route without protocol is `proto boot`, like ip(8)",
    file: "kernel/netlink/_route.ts",
    find: "protocol: route.protocol ?? (set ? RTPROT_BOOT : 0),",
    replace: "protocol: route.protocol ?? 0,",
    tests: ["kernel/netlink/_route_test.ts"],
  },
  {
    behaviour: "an address's flags come from IFA_FLAGS over the 8-bit ifa_flags",
    file: "kernel/netlink/_addr.ts",
    find: "flags: attrs.flags !== undefined ? rt.formatAddressFlags(attrs.flags) : headerFlags,",
    replace: "flags: headerFlags,",
    tests: ["kernel/netlink/_addr_test.ts"],
  },
  // kernel/iface.ts
  {
    behaviour: "interface selection skips deprecated addresses",
    file: "kernel/iface.ts",
    find: "if (a.flags & IFA_F.DEPRECATED && !explicit) return",
    replace: "if (false) return",
    tests: ["kernel/iface_test.ts"],
  },
  {
    behaviour: "interface selection skips tentative addresses",
    file: "kernel/iface.ts",
    find: "if (a.flags & IFA_F.TENTATIVE && !(a.flags & IFA_F.OPTIMISTIC)) {",
    replace: "if (false) {",
    tests: ["kernel/iface_test.ts"],
  },
  {
    behaviour: "interface selection ranks global before link-local",
    file: "kernel/iface.ts",
    find: 'const KIND_RANK: Record<Kind, number> = { global: 0, "link-local": 1,',
    replace: 'const KIND_RANK: Record<Kind, number> = { global: 1, "link-local": 0,',
    tests: ["kernel/iface_test.ts"],
  },
  // util/
  {
    behaviour: "backoff is capped",
    file: "util/abort.ts",
    find: "this.#next = Math.min(this.#next * 2, this.#max);",
    replace: "this.#next = this.#next * 2;",
    tests: ["util/abort_test.ts"],
  },
  {
    behaviour: "klog header month",
    file: "util/log.ts",
    find: "return `${severity}${pad(d.getUTCMonth() + 1)}",
    replace: "return `${severity}${pad(d.getUTCMonth())}",
    tests: ["util/log_test.ts"],
  },
  {
    behaviour: "errors are printed with their cause chain",
    file: "util/log.ts",
    find: "      e = e.cause;",
    replace: "      e = undefined;",
    tests: ["util/log_test.ts"],
  },
  {
    behaviour: "Prometheus label values are escaped",
    file: "util/metrics.ts",
    find: `return v.replaceAll("\\\\", "\\\\\\\\").replaceAll('"', '\\\\"')`,
    replace: `return v.replaceAll("\\\\", "\\\\\\\\")`,
    tests: ["util/metrics_test.ts"],
  },
  {
    behaviour: "the watchdog pings at half of WATCHDOG_USEC",
    file: "util/watchdog.ts",
    find: "return Math.max(1, Number(usec) / 2000);",
    replace: "return Math.max(1, Number(usec) / 1000);",
    tests: ["util/watchdog_test.ts"],
  },
  {
    behaviour: "an etcd lease granted with the listing but not used is revoked",
    file: "subnet/etcd/manager.ts",
    find: "      if (spare) await this.#kv.revokeLease(spare.id).catch(() => {});",
    replace: "      if (spare && false) await this.#kv.revokeLease(spare.id).catch(() => {});",
    tests: ["subnet/etcd/manager_test.ts"],
  },
  {
    behaviour: "a route dump skips messages whose prefix length cannot match",
    file: "kernel/netlink/_route.ts",
    find: "(dstLen < 0 || data[1] === dstLen)",
    replace: "(dstLen < 0 || data[1] !== dstLen)",
    tests: ["kernel/netlink/_route_test.ts"],
  },
  {
    behaviour: "runAgent takes the config from the request started before it",
    file: "agent.ts",
    find: "        return outcome.value;",
    replace: "        return await deps.manager.getNetworkConfig({ signal: opts.signal });",
    tests: ["test/agent_shutdown_test.ts"],
  },
  {
    behaviour: "the heap compaction is V8's memory-reducing collection",
    file: "util/heap.ts",
    find: '  gc({ type: "major", execution: "sync", flavor: "last-resort" });',
    replace: "  gc();",
    tests: ["util/heap_test.ts"],
  },
  {
    behaviour: "IPv4 text of four address bytes",
    file: "kernel/netlink/_text.ts",
    find: "if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;",
    replace: "if (bytes.length === 4) return `${bytes[0]}.${bytes[2]}.${bytes[1]}.${bytes[3]}`;",
    tests: ["kernel/netlink/_text_test.ts"],
  },
  {
    behaviour: "the route attribute table reads RTA_GATEWAY",
    file: "kernel/netlink/_route.ts",
    find: "  5: (data, obj) => obj.gateway = data,",
    replace: "  55: (data, obj) => obj.gateway = data,",
    tests: ["kernel/netlink/_route_test.ts"],
  },
];
