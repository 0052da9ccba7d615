import assert from "node:assert/strict";
import type { Link, VxlanLinkSpec } from "../../kernel/netlink/types.ts";
import { parseIP4, parseIP4Net } from "../../subnet/ip.ts";
import { type DeviceSpec, incompatibilities, VxlanDevice } from "./device.ts";
import { world } from "../../test/vxlan_fixtures.ts";

const want: VxlanLinkSpec = {
  kind: "vxlan",
  name: "flannel.1",
  vni: 1,
  local: "192.168.1.10",
  dev: 2,
  learning: false,
  gbp: false,
};

function link(vxlan: Partial<NonNullable<Link["vxlan"]>> = {}, kind = "vxlan"): Link {
  return {
    index: 5,
    name: "flannel.1",
    mtu: 1450,
    up: true,
    flags: 1,
    mac: "0e:00:00:00:00:05",
    kind,
    vxlan: {
      vni: 1,
      local: "192.168.1.10",
      dev: 2,
      port: 8472,
      learning: false,
      gbp: false,
      ...vxlan,
    },
  };
}

Deno.test("incompatibilities() compares what flannel compares, plus learning", async (t) => {
  const cases: Array<[string, Link, VxlanLinkSpec, string[]]> = [
    ["identical", link(), want, []],
    ["port 0 means the kernel default 8472", link(), { ...want, port: 0 }, []],
    ["explicit port equal", link({ port: 4789 }), { ...want, port: 4789 }, []],
    ["other port", link({ port: 4789 }), want, ["port 4789 (want 8472)"]],
    ["other vni", link({ vni: 2 }), want, ["vni 2 (want 1)"]],
    ["other local", link({ local: "192.168.1.99" }), want, [
      "local 192.168.1.99 (want 192.168.1.10)",
    ]],
    ["unset local on either side is not compared", link({ local: undefined }), want, []],
    ["other underlay", link({ dev: 3 }), want, ["underlay device index 3 (want 2)"]],
    ["gbp", link({ gbp: true }), want, ["gbp true (want false)"]],
    ["learning", link({ learning: true }), want, ["learning true (want false)"]],
    ["not vxlan", link({}, "dummy"), want, ["type dummy (want vxlan)"]],
    ["mtu and mac are not compared", { ...link(), mtu: 1400, mac: "02:00:00:00:00:01" }, want, []],
  ];
  for (const [name, have, spec, diffs] of cases) {
    await t.step(name, () => assert.deepEqual(incompatibilities(have, spec), diffs));
  }
});

function spec(eth0: number, extra: Partial<DeviceSpec> = {}): DeviceSpec {
  return { ...want, dev: eth0, mtu: 1450, mac: "0a:0b:0c:0d:0e:0f", ...extra };
}

Deno.test("VxlanDevice.ensure() creates the device, its /32 and brings it up", async () => {
  const { nl, log, eth0 } = await world();
  const procSys = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${procSys}/net/ipv6/conf/flannel.1`, { recursive: true });
    await Deno.writeTextFile(`${procSys}/net/ipv6/conf/flannel.1/accept_ra`, "1");
    const dev = new VxlanDevice({ netlink: nl, log, spec: spec(eth0), procSys });
    dev.setAddress(parseIP4("10.244.1.0"), parseIP4Net("10.244.0.0/16"));
    const l = await dev.ensure();
    assert.equal(l.up, true);
    const have = (await nl.linkByName("flannel.1"))!;
    assert.equal(have.mac, "0a:0b:0c:0d:0e:0f");
    assert.equal(have.mtu, 1450);
    assert.deepEqual(have.vxlan, {
      vni: 1,
      local: "192.168.1.10",
      dev: eth0,
      port: 8472,
      learning: false,
      gbp: false,
    });
    assert.deepEqual((await nl.addresses(have.index)).map((a) => a.address), ["10.244.1.0/32"]);
    assert.equal(await Deno.readTextFile(`${procSys}/net/ipv6/conf/flannel.1/accept_ra`), "0");
    // Idempotent: a second pass changes nothing.
    const before = nl.calls.length;
    await dev.ensure();
    assert.deepEqual(nl.calls.slice(before).map((c) => c.method), ["linkByName", "addresses"]);
  } finally {
    await Deno.remove(procSys, { recursive: true });
  }
});

Deno.test("VxlanDevice.ensure() reuses a compatible device as is and fixes addresses", async () => {
  const { nl, log, eth0 } = await world();
  await nl.external.linkAdd(spec(eth0));
  const old = (await nl.linkByName("flannel.1"))!;
  await nl.external.addressAdd({ index: old.index, address: "10.244.7.0/32" });
  await nl.external.addressAdd({ index: old.index, address: "172.16.0.1/32" });
  const dev = new VxlanDevice({ netlink: nl, log, spec: spec(eth0) });
  dev.setAddress(parseIP4("10.244.1.0"), parseIP4Net("10.244.0.0/16"));
  await dev.ensure();
  const now = (await nl.linkByName("flannel.1"))!;
  assert.equal(now.index, old.index, "not recreated");
  assert.ok(!nl.calls.some((c) => c.method === "linkDelete" || c.method === "linkAdd"));
  assert.deepEqual(
    (await nl.addresses(now.index)).map((a) => a.address).sort(),
    ["10.244.1.0/32", "172.16.0.1/32"],
    "stale in-network address removed, others kept",
  );
});

Deno.test("VxlanDevice.ensure() recreates an incompatible device, saying what differed", async () => {
  const { nl, log, eth0 } = await world();
  await nl.external.linkAdd(spec(eth0, { port: 4789 }));
  const old = (await nl.linkByName("flannel.1"))!;
  const dev = new VxlanDevice({ netlink: nl, log, spec: spec(eth0) });
  await dev.ensure();
  const now = (await nl.linkByName("flannel.1"))!;
  assert.notEqual(now.index, old.index);
  assert.equal(now.vxlan?.port, 8472);
  assert.ok(
    log.lines.some((l) =>
      l.includes(
        '"flannel.1" already exists with incompatible configuration: port 4789 (want 8472); recreating device',
      )
    ),
  );
});

Deno.test("VxlanDevice.ensure() corrects the MTU and MAC of a compatible device in place", async () => {
  const { nl, log, eth0 } = await world();
  await nl.external.linkAdd(spec(eth0, { mtu: 1400, mac: "02:00:00:00:00:99" }));
  const old = (await nl.linkByName("flannel.1"))!;
  await new VxlanDevice({ netlink: nl, log, spec: spec(eth0) }).ensure();
  const now = (await nl.linkByName("flannel.1"))!;
  assert.equal(now.index, old.index);
  assert.equal(now.mtu, 1450);
  assert.equal(now.mac, "0a:0b:0c:0d:0e:0f");
});
