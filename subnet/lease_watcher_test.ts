import assert from "node:assert/strict";
import { LeaseWatcher } from "./lease_watcher.ts";
import { parseIP4, parseIP4Net } from "./ip.ts";
import type { Lease } from "./mod.ts";

function lease(subnet: string, publicIP = "192.168.1.1", backendData?: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType: "vxlan", backendData },
  };
}

const own = lease("10.5.1.0/24", "192.168.1.100");

Deno.test("LeaseWatcher.apply() reports a snapshot as added, never the own lease", () => {
  const w = new LeaseWatcher(own);
  const batch = w.apply({ snapshot: [own, lease("10.5.2.0/24"), lease("10.5.3.0/24")] });
  assert.deepEqual(batch.map((e) => [e.type, e.lease.subnet]), [
    ["added", parseIP4Net("10.5.2.0/24")],
    ["added", parseIP4Net("10.5.3.0/24")],
  ]);
  assert.equal(w.leases.length, 2);
});

Deno.test("LeaseWatcher.apply() diffs a re-list against what it knows", async (t) => {
  await t.step("unchanged leases are silent, missing ones removed, new ones added", () => {
    const w = new LeaseWatcher(own);
    w.apply({ snapshot: [lease("10.5.2.0/24"), lease("10.5.3.0/24")] });
    const batch = w.apply({ snapshot: [lease("10.5.3.0/24"), lease("10.5.4.0/24")] });
    assert.deepEqual(batch.map((e) => [e.type, e.lease.subnet.ip]), [
      ["added", parseIP4("10.5.4.0")],
      ["removed", parseIP4("10.5.2.0")],
    ]);
  });
  await t.step("a lease whose attributes changed while disconnected is re-added", () => {
    const w = new LeaseWatcher(own);
    w.apply({ snapshot: [lease("10.5.2.0/24", "192.168.1.2", '{"VtepMAC":"aa"}')] });
    const batch = w.apply({ snapshot: [lease("10.5.2.0/24", "192.168.1.2", '{"VtepMAC":"bb"}')] });
    assert.equal(batch.length, 1);
    assert.equal(batch[0].type, "added");
    assert.equal(batch[0].lease.attrs.backendData, '{"VtepMAC":"bb"}');
  });
  await t.step("flannel's behaviour (silently keep) is available as an option", () => {
    const w = new LeaseWatcher(own, { reportChangedOnResync: false });
    w.apply({ snapshot: [lease("10.5.2.0/24", "192.168.1.2")] });
    assert.deepEqual(w.apply({ snapshot: [lease("10.5.2.0/24", "192.168.1.3")] }), []);
  });
});

Deno.test("LeaseWatcher.apply() turns events into a batch", async (t) => {
  await t.step("removal carries the stored lease with its attributes", () => {
    const w = new LeaseWatcher(own);
    w.apply({ snapshot: [lease("10.5.2.0/24", "192.168.1.2", '{"VNI":1}')] });
    const bare = { ...lease("10.5.2.0/24", "0.0.0.0"), attrs: { publicIP: 0 } };
    const batch = w.apply({ events: [{ type: "removed", lease: bare }] });
    assert.equal(batch[0].lease.attrs.backendData, '{"VNI":1}');
    assert.equal(w.leases.length, 0);
  });
  await t.step("removal of an unknown lease is passed through bare", () => {
    const w = new LeaseWatcher(own);
    const bare = lease("10.5.9.0/24");
    assert.deepEqual(w.apply({ events: [{ type: "removed", lease: bare }] }), [
      { type: "removed", lease: bare },
    ]);
  });
  await t.step("added replaces an entry with the same subnet, own lease ignored", () => {
    const w = new LeaseWatcher(own);
    w.apply({ events: [{ type: "added", lease: lease("10.5.2.0/24", "192.168.1.2") }] });
    const batch = w.apply({
      events: [
        { type: "added", lease: lease("10.5.2.0/24", "192.168.1.3") },
        { type: "added", lease: own },
      ],
    });
    assert.equal(batch.length, 1);
    assert.equal(w.leases.length, 1);
    assert.equal(w.leases[0].attrs.publicIP, parseIP4("192.168.1.3"));
  });
});
