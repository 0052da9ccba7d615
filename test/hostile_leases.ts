/**
 * Hostile and broken peer leases for the backends' table tests: each must be skipped with one
 * warning naming its source and the reason, and must create no kernel state. Built from a good
 * lease of the backend under test, so the same table serves host-gw, vxlan and udp.
 */
import { formatIP4, formatIP4Net, type IP4Net, parseIP4 } from "../subnet/ip.ts";
import type { Lease, LeaseAttrs } from "../subnet/mod.ts";

export interface HostileCase {
  readonly name: string;
  readonly lease: Lease;
  /** What the warning must say. */
  readonly reason: RegExp;
}

export interface HostileTableOptions {
  /** A lease the backend would program (a subnet inside `network`, a usable PublicIP). */
  readonly good: Lease;
  /** The own lease. */
  readonly own: Lease;
  readonly network: IP4Net;
  /** A BackendType the backend must not accept. */
  readonly otherType: string;
}

const DEEP = "[".repeat(100_000) + "]".repeat(100_000);

/** The etcd key a lease for `subnet` would have. */
export function sourceOf(subnet: IP4Net): string {
  return `etcd key "/coreos.com/network/subnets/${formatIP4(subnet.ip)}-${subnet.prefix}"`;
}

/** The cases every backend must refuse, plus `extra` ones built from `good` the same way. */
export function hostileLeases(
  o: HostileTableOptions,
  extra: ReadonlyArray<[name: string, attrs: Partial<LeaseAttrs>, reason: RegExp]> = [],
): HostileCase[] {
  const { good, own, network } = o;
  const at = (offset: number) => (network.ip + offset) >>> 0;
  const make = (
    name: string,
    change: { subnet?: IP4Net; attrs?: Partial<LeaseAttrs> },
    reason: RegExp,
  ): HostileCase => {
    const subnet = change.subnet ?? good.subnet;
    return {
      name,
      lease: {
        ...good,
        subnet,
        attrs: { ...good.attrs, ...change.attrs },
        source: sourceOf(subnet),
      },
      reason,
    };
  };
  const ip = (publicIP: string) => ({ attrs: { publicIP: parseIP4(publicIP) } });
  const ownNet = formatIP4Net(own.subnet).replaceAll(".", "\\.");
  return [
    make("PublicIP missing", { attrs: { publicIP: 0 } }, /PublicIP 0\.0\.0\.0 is unset/),
    make("PublicIP in 0.0.0.0/8", ip("0.1.2.3"), /is in 0\.0\.0\.0\/8/),
    make("PublicIP loopback", ip("127.0.0.1"), /PublicIP 127\.0\.0\.1 is a loopback address/),
    make("PublicIP multicast", ip("224.0.0.251"), /is a multicast address/),
    make("PublicIP broadcast", ip("255.255.255.255"), /is the broadcast address/),
    make("PublicIP reserved 240/4", ip("240.1.2.3"), /is in the reserved range 240\.0\.0\.0\/4/),
    make(
      "PublicIP inside the subnet it announces",
      { attrs: { publicIP: (good.subnet.ip + 5) >>> 0 } },
      /lies inside the subnet it announces \(it would be reached through the overlay itself\)/,
    ),
    make(
      "PublicIP inside our own subnet",
      { attrs: { publicIP: (own.subnet.ip + 5) >>> 0 } },
      /lies inside our own subnet/,
    ),
    make("PublicIP is ours", { attrs: { publicIP: own.attrs.publicIP } }, /this node's own/),
    make("subnet 0.0.0.0/0", { subnet: { ip: 0, prefix: 0 } }, /0\.0\.0\.0\/0 is outside/),
    make(
      "subnet outside the Network",
      { subnet: { ip: parseIP4("192.168.50.0"), prefix: 24 } },
      /subnet 192\.168\.50\.0\/24 is outside the Network/,
    ),
    make(
      "subnet = the whole Network",
      { subnet: network },
      new RegExp(`overlaps our own subnet ${ownNet}`),
    ),
    make(
      "subnet inside our own",
      { subnet: { ip: own.subnet.ip, prefix: own.subnet.prefix + 1 } },
      new RegExp(`overlaps our own subnet ${ownNet}`),
    ),
    make(
      "our own subnet announced by another node",
      { subnet: own.subnet },
      new RegExp(`announces our own subnet ${ownNet}`),
    ),
    make(
      "host bits set",
      { subnet: { ip: at(0x0705), prefix: 24 } },
      /is not a network address \(host bits set\)/,
    ),
    make(
      "another backend",
      { attrs: { backendType: o.otherType } },
      new RegExp(`non-.* subnet \\(type="${o.otherType}"\\)`),
    ),
    make(
      "a 1 MB BackendType with newlines",
      { attrs: { backendType: "x\n".repeat(500_000) } },
      /type="(x\\n)+x?"… \(1000000 bytes\)/,
    ),
    ...extra.map(([name, attrs, reason]) => make(name, { attrs }, reason)),
  ];
}

/** vxlan's BackendData cases (host-gw and udp do not read BackendData). */
export const HOSTILE_VXLAN_DATA: ReadonlyArray<[string, Partial<LeaseAttrs>, RegExp]> = [
  ["no BackendData", { backendData: undefined }, /no BackendData/],
  ["BackendData null", { backendData: "null" }, /it is null/],
  ["BackendData a deep array", { backendData: DEEP }, /expected a JSON object, got array/],
  [
    "BackendData of 1 MB",
    { backendData: `{"VNI":1,"VtepMAC":"${"a".repeat(1_000_000)}"}` },
    /bad "VtepMAC"/,
  ],
  ["VNI a string", { backendData: '{"VNI":"1","VtepMAC":"aa:aa:aa:aa:aa:09"}' }, /"VNI" must/],
  ["VNI another", { backendData: '{"VNI":7,"VtepMAC":"aa:aa:aa:aa:aa:09"}' }, /VNI 7 differs/],
  ["VtepMAC missing", { backendData: '{"VNI":1}' }, /"VtepMAC" must be a string/],
  ["VtepMAC a number", { backendData: '{"VNI":1,"VtepMAC":5}' }, /"VtepMAC" must be a string/],
  ["VtepMAC zero", { backendData: '{"VNI":1,"VtepMAC":"00:00:00:00:00:00"}' }, /all zeros/],
  ["VtepMAC multicast", { backendData: '{"VNI":1,"VtepMAC":"01:00:5e:00:00:01"}' }, /multicast/],
  ["VtepMAC broadcast", { backendData: '{"VNI":1,"VtepMAC":"ff:ff:ff:ff:ff:ff"}' }, /multicast/],
  ["VtepMAC garbage", { backendData: '{"VNI":1,"VtepMAC":"nope"}' }, /bad "VtepMAC"/],
];
