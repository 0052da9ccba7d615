import assert from "node:assert/strict";
import { checkSource, PeerIndex, PeerTable, SourceVerdict } from "./peers.ts";

const ip = (s: string) => s.split(".").reduce((a, o) => a * 256 + Number(o), 0);

const A = { net: ip("10.5.1.0"), prefix: 24, publicIP: ip("192.168.1.11"), port: 8285 };
const B = { net: ip("10.5.2.0"), prefix: 24, publicIP: ip("192.168.1.12"), port: 8285 };
const WIDE = { net: ip("10.6.0.0"), prefix: 16, publicIP: ip("192.168.1.13"), port: 9000 };
const NARROW = { net: ip("10.6.7.0"), prefix: 24, publicIP: ip("192.168.1.14"), port: 9000 };

Deno.test("PeerIndex.route() finds the peer leasing a destination, longest prefix first", async (t) => {
  const index = PeerIndex.of([A, B, WIDE, NARROW]);
  const cases: [string, string, typeof A | undefined][] = [
    ["first host of A", "10.5.1.1", A],
    ["broadcast of B", "10.5.2.255", B],
    ["network address of A", "10.5.1.0", A],
    ["inside the /16 only", "10.6.9.1", WIDE],
    ["inside the /24 within the /16", "10.6.7.1", NARROW],
    ["unleased", "10.5.3.1", undefined],
    ["outside the network", "8.8.8.8", undefined],
  ];
  for (const [name, dst, want] of cases) {
    await t.step(name, () => assert.deepEqual(index.route(ip(dst)), want));
  }
});

Deno.test("checkSource() lets in only known peers with sources inside their subnets", async (t) => {
  const index = PeerIndex.of([A, B]);
  const cases: [string, string, string, number][] = [
    ["peer A, pod of A", "192.168.1.11", "10.5.1.2", SourceVerdict.ok],
    ["peer A, its flannel0 address", "192.168.1.11", "10.5.1.0", SourceVerdict.ok],
    ["stranger", "192.168.1.99", "10.5.1.2", SourceVerdict.unknownSource],
    ["peer A claiming a pod of B", "192.168.1.11", "10.5.2.2", SourceVerdict.spoofedSource],
    ["peer A claiming an outside source", "192.168.1.11", "1.2.3.4", SourceVerdict.spoofedSource],
  ];
  for (const [name, src, inner, want] of cases) {
    await t.step(name, () => assert.equal(checkSource(index, ip(src), ip(inner)), want));
  }
});

Deno.test("PeerIndex.refresh() follows the published table, and only when it changed", () => {
  const table = new PeerTable(8);
  const index = new PeerIndex(table.buffer);
  assert.equal(index.refresh(), true, "first read");
  assert.equal(index.route(ip("10.5.1.1")), undefined);
  table.publish([A, B]);
  assert.equal(index.refresh(), true);
  assert.deepEqual(index.route(ip("10.5.1.1")), A);
  assert.equal(index.refresh(), false, "unchanged");
  table.publish([B]);
  assert.equal(index.refresh(), true);
  assert.equal(index.route(ip("10.5.1.1")), undefined, "removed peer is gone");
  assert.equal(checkSource(index, A.publicIP, ip("10.5.1.2")), SourceVerdict.unknownSource);
  assert.throws(() => table.publish(new Array(9).fill(A)), /holds 8/);
});
