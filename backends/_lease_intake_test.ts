import assert from "node:assert/strict";
import { parseNetworkConfig } from "../subnet/config.ts";
import { formatIP4Net, parseIP4, parseIP4Net } from "../subnet/ip.ts";
import type { Lease, LeaseEvent } from "../subnet/mod.ts";
import type { Logger } from "../util/log.ts";
import { LeaseIntake } from "./_lease_intake.ts";

const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}');

function lease(subnet: string, publicIP: string, source?: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType: "host-gw" },
    ...(source && { source }),
  };
}

function intake() {
  const lines: string[] = [];
  const log: Logger = {
    level: 0,
    info: () => {},
    warn: (m) => lines.push(m),
    error: (m) => lines.push(`E ${m}`),
    v: () => {},
  };
  const own = lease("10.5.1.0/24", "192.168.1.10", 'node "me"');
  return { lines, i: new LeaseIntake({ config, own, backendTypes: ["host-gw"], log }) };
}

const show = (batch: LeaseEvent[]) => batch.map((e) => `${e.type} ${formatIP4Net(e.lease.subnet)}`);

Deno.test("LeaseIntake logs a refused lease once, again only when it changes", () => {
  const { lines, i } = intake();
  const bad = lease("10.5.2.0/24", "127.0.0.1", 'node "b"');
  assert.deepEqual(show(i.apply({ snapshot: [bad] })), []);
  assert.deepEqual(show(i.apply({ snapshot: [bad] })), []);
  assert.deepEqual(show(i.apply({ events: [{ type: "added", lease: bad }] })), []);
  assert.deepEqual(lines, [
    'Ignoring the lease of node "b" for 10.5.2.0/24: PublicIP 127.0.0.1 is a loopback address',
  ]);
  assert.equal(i.refused, 1);
  i.apply({ events: [{ type: "added", lease: lease("10.5.2.0/24", "0.0.0.0", 'node "b"') }] });
  assert.equal(lines.length, 2, "changed and still bad: logged again");
  assert.deepEqual(show(i.apply({ events: [{ type: "removed", lease: bad }] })), []);
  assert.equal(i.refused, 0, "a removed refused lease is forgotten");
  i.apply({ events: [{ type: "added", lease: bad }] });
  assert.equal(lines.length, 3, "a refused lease that comes back is logged again");
});

Deno.test("LeaseIntake turns a lease that goes bad into a removal and a fixed one into an add", () => {
  const { lines, i } = intake();
  const good = lease("10.5.2.0/24", "192.168.1.12");
  const bad = lease("10.5.2.0/24", "224.0.0.1");
  assert.deepEqual(show(i.apply({ snapshot: [good] })), ["added 10.5.2.0/24"]);
  const removed = i.apply({ events: [{ type: "added", lease: bad }] });
  assert.deepEqual(show(removed), ["removed 10.5.2.0/24"]);
  assert.equal(removed[0].lease.attrs.publicIP, good.attrs.publicIP, "carries the programmed one");
  assert.deepEqual(i.leases, []);
  assert.deepEqual(show(i.apply({ events: [{ type: "added", lease: good }] })), [
    "added 10.5.2.0/24",
  ]);
  // On a re-list: a lease that turned bad is removed, and the refusal is forgotten once gone.
  assert.deepEqual(show(i.apply({ snapshot: [bad] })), ["removed 10.5.2.0/24"]);
  assert.deepEqual(show(i.apply({ snapshot: [] })), []);
  assert.equal(i.refused, 0);
  assert.equal(lines.length, 2);
});

Deno.test("LeaseIntake drops our own lease silently but refuses our subnet from another node", () => {
  const { lines, i } = intake();
  const mine = lease("10.5.1.0/24", "192.168.1.10", 'node "me"');
  const thief = lease("10.5.1.0/24", "192.168.1.66", 'node "thief"');
  // Our node as the datastore reports it, even with other family flags than our own lease.
  const mineDual = { ...mine, enableIPv6: true, ipv6Subnet: { ip: 1n << 120n, prefix: 64 } };
  assert.deepEqual(show(i.apply({ snapshot: [mine, thief] })), []);
  assert.deepEqual(show(i.apply({ events: [{ type: "added", lease: mineDual }] })), []);
  assert.deepEqual(lines, [
    'Ignoring the lease of node "thief" for 10.5.1.0/24: it announces our own subnet 10.5.1.0/24',
  ]);
});
