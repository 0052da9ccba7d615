import assert from "node:assert/strict";
import { parseNetworkConfig } from "../config.ts";
import { parseIP4, parseIP6 } from "../ip.ts";
import { annotationsFor } from "./annotations.ts";
import {
  annotationPatch,
  badAddressAnnotations,
  checkOwnPodCIDRs,
  macFromBackendData,
  nodeToLease,
  ownAnnotations,
  parsePodCIDRs,
} from "./node_lease.ts";
import type { Node } from "./types.ts";

const A = annotationsFor();
const P = A.prefix;
const V4 = parseNetworkConfig('{"Network":"10.244.0.0/16"}', { validate: false });
const DUAL = parseNetworkConfig(
  '{"Network":"10.244.0.0/16","IPv6Network":"fd00::/56","EnableIPv6":true}',
  { validate: false },
);

const V6_ONLY = parseNetworkConfig(
  '{"EnableIPv4":false,"IPv6Network":"fd00::/56","EnableIPv6":true}',
  { validate: false },
);

const node = (ann: Record<string, string>, spec: Node["spec"] = { podCIDR: "10.244.7.0/24" }) => ({
  metadata: { name: "test", annotations: ann },
  spec,
});

Deno.test("nodeToLease() reads dist/fake-node.yaml as flannel does", () => {
  const lease = nodeToLease(
    node({
      [`${P}backend-data`]: '{"VtepMAC":"96:59:b2:3f:04:ee"}',
      [`${P}backend-type`]: "vxlan",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "192.168.77.17",
    }),
    V4,
    A,
  );
  assert.deepEqual(lease, {
    enableIPv4: true,
    enableIPv6: false,
    subnet: { ip: parseIP4("10.244.7.0"), prefix: 24 },
    attrs: {
      publicIP: parseIP4("192.168.77.17"),
      backendType: "vxlan",
      backendData: '{"VtepMAC":"96:59:b2:3f:04:ee"}',
    },
    source: 'node "test"',
  });
});

Deno.test("nodeToLease() reads an IPv6-only node in an IPv6-only network", () => {
  const lease = nodeToLease(
    node({
      [`${P}backend-type`]: "vxlan",
      [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}',
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ipv6`]: "fd99::2",
    }, { podCIDR: "fd00:0:0:2::/64", podCIDRs: ["fd00:0:0:2::/64"] }),
    V6_ONLY,
    A,
  );
  assert.deepEqual(lease, {
    enableIPv4: false,
    enableIPv6: true,
    subnet: { ip: 0, prefix: 0 },
    ipv6Subnet: { ip: parseIP6("fd00:0:0:2::"), prefix: 64 },
    attrs: {
      publicIP: 0,
      publicIPv6: parseIP6("fd99::2"),
      backendType: "vxlan",
      backendV6Data: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}',
    },
    source: 'node "test"',
  });
});

Deno.test("parsePodCIDRs() takes podCIDRs first and refuses three", async (t) => {
  await t.step("dual stack", () => {
    const c = parsePodCIDRs(
      node({}, { podCIDR: "10.1.0.0/24", podCIDRs: ["fd00::/64", "10.2.0.0/24"] }),
    );
    assert.deepEqual(c, {
      v6: { ip: parseIP6("fd00::"), prefix: 64 },
      v4: { ip: parseIP4("10.2.0.0"), prefix: 24 },
    });
  });
  await t.step("three", () => {
    assert.throws(
      () => parsePodCIDRs(node({}, { podCIDRs: ["10.1.0.0/24", "10.2.0.0/24", "fd00::/64"] })),
      /node "test" pod cidrs should be IPv4\/IPv6 only or dualstack/,
    );
  });
  await t.step("garbage", () => {
    assert.throws(
      () => parsePodCIDRs(node({}, { podCIDR: "10.1.0.0" })),
      /invalid pod CIDR "10.1.0.0"/,
    );
  });
});

Deno.test("ownAnnotations() writes exactly flannel's values", async (t) => {
  const base = { publicIP: parseIP4("192.168.77.17") };
  await t.step("host-gw on a fresh node", () => {
    assert.equal(
      annotationPatch(ownAnnotations(node({}), { ...base, backendType: "host-gw" }, A)!),
      `{"metadata":{"annotations":{"${P}backend-data":"null","${P}backend-type":"host-gw",` +
        `"${P}kube-subnet-manager":"true","${P}public-ip":"192.168.77.17"}}}`,
    );
  });
  await t.step("udp writes an empty backend-type", () => {
    assert.equal(ownAnnotations(node({}), base, A)![`${P}backend-type`], "");
  });
  await t.step("vxlan without data writes neither backend-data nor public-ip", () => {
    assert.deepEqual(ownAnnotations(node({}), { ...base, backendType: "vxlan" }, A), {
      [`${P}backend-type`]: "vxlan",
      [`${P}kube-subnet-manager`]: "true",
    });
  });
  await t.step("nothing to do when up to date", () => {
    const ann = {
      [`${P}backend-data`]: "null",
      [`${P}backend-type`]: "host-gw",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "192.168.77.17",
    };
    assert.equal(ownAnnotations(node(ann), { ...base, backendType: "host-gw" }, A), undefined);
  });
  await t.step("public-ip-overwrite wins", () => {
    const ann = {
      [`${P}backend-data`]: "null",
      [`${P}backend-type`]: "host-gw",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "192.168.77.17",
      [`${P}public-ip-overwrite`]: "203.0.113.1",
    };
    assert.deepEqual(ownAnnotations(node(ann), { ...base, backendType: "host-gw" }, A), {
      [`${P}public-ip`]: "203.0.113.1",
    });
  });
  await t.step("an unusable public-ip-overwrite is ignored (peers could not reach it)", () => {
    for (const bad of ["127.0.0.1", "0.0.0.0", "not-an-ip", "x".repeat(100_000)]) {
      const ann = {
        [`${P}backend-data`]: "null",
        [`${P}backend-type`]: "host-gw",
        [`${P}kube-subnet-manager`]: "true",
        [`${P}public-ip`]: "192.168.77.17",
        [`${P}public-ip-overwrite`]: bad,
      };
      assert.equal(ownAnnotations(node(ann), { ...base, backendType: "host-gw" }, A), undefined);
    }
  });
  await t.step("dual-stack vxlan writes the v6 pair", () => {
    const got = ownAnnotations(node({}), {
      ...base,
      publicIPv6: parseIP6("fc00::1"),
      backendType: "vxlan",
      backendData: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}',
      backendV6Data: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}',
    }, A)!;
    assert.equal(got[`${P}public-ipv6`], "fc00::1");
    assert.equal(got[`${P}backend-v6-data`], '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}');
  });
  // IPv6 only: the backends advertise publicIP 0 (Go's zero IPv4 address) and no IPv4 data.
  const v6Only = { publicIP: 0, publicIPv6: parseIP6("fd99::2") };
  await t.step("IPv6-only vxlan writes no public-ip and no backend-data", () => {
    const vtep = '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}';
    const got = ownAnnotations(node({}), {
      ...v6Only,
      backendType: "vxlan",
      backendV6Data: vtep,
    }, A)!;
    assert.deepEqual(got, {
      [`${P}backend-type`]: "vxlan",
      [`${P}backend-v6-data`]: vtep,
      [`${P}public-ipv6`]: "fd99::2",
      [`${P}kube-subnet-manager`]: "true",
    });
    assert.equal(
      ownAnnotations(node(got), { ...v6Only, backendType: "vxlan", backendV6Data: vtep }, A),
      undefined,
    );
  });
  await t.step('IPv6-only host-gw writes public-ip "0.0.0.0" and both data "null"', () => {
    assert.deepEqual(ownAnnotations(node({}), { ...v6Only, backendType: "host-gw" }, A), {
      [`${P}backend-type`]: "host-gw",
      [`${P}backend-data`]: "null",
      [`${P}public-ip`]: "0.0.0.0",
      [`${P}backend-v6-data`]: "null",
      [`${P}public-ipv6`]: "fd99::2",
      [`${P}kube-subnet-manager`]: "true",
    });
  });
  await t.step("public-ipv6-overwrite wins; an unusable one is ignored", () => {
    const attrs = { ...v6Only, backendType: "host-gw" };
    const over = (text: string) =>
      ownAnnotations(node({ [`${P}public-ipv6-overwrite`]: text }), attrs, A)![`${P}public-ipv6`];
    assert.equal(over("2001:db8::9"), "2001:db8::9");
    assert.equal(over("::1"), "fd99::2");
  });
});

Deno.test("checkOwnPodCIDRs() requires each enabled family inside its Network", async (t) => {
  await t.step("inside", () => {
    const r = checkOwnPodCIDRs(
      "n",
      parsePodCIDRs(node({}, { podCIDRs: ["10.244.3.0/24", "fd00:0:0:3::/64"] })),
      DUAL,
      "/x.json",
    );
    assert.equal(r.subnet.ip, parseIP4("10.244.3.0"));
    assert.equal(r.ipv6Subnet?.prefix, 64);
  });
  await t.step("wider than Network", () => {
    assert.throws(
      () =>
        checkOwnPodCIDRs("n", parsePodCIDRs(node({}, { podCIDR: "10.0.0.0/8" })), V4, "/x.json"),
      /doesn't contain "10.0.0.0\/8" PodCIDR of the "n" node/,
    );
  });
  await t.step("IPv4 only under EnableIPv6: names the setting, the podCIDR and the fix", () => {
    assert.throws(
      () => checkOwnPodCIDRs("n", parsePodCIDRs(node({})), DUAL, "/x.json"),
      (e: Error) => {
        assert.equal(
          e.message,
          'node "n" has no IPv6 pod CIDR (podCIDRs 10.244.7.0/24) but "EnableIPv6" is true in ' +
            "/x.json: give the node an IPv6 podCIDR (dual stack: kube-controller-manager " +
            "--cluster-cidr=<IPv4 CIDR>,<IPv6 CIDR>, kubeadm --pod-network-cidr=<IPv4 CIDR>," +
            "<IPv6 CIDR>; a node's podCIDRs cannot change, so re-register it) or, for an " +
            'IPv4-only cluster, set "EnableIPv6": false',
        );
        return true;
      },
    );
  });
  await t.step("IPv4 only in an IPv6-only network: the fix is an IPv4 network", () => {
    assert.throws(
      () => checkOwnPodCIDRs("n", parsePodCIDRs(node({})), V6_ONLY, "/x.json"),
      /no IPv6 pod CIDR \(podCIDRs 10.244.7.0\/24\).*set "EnableIPv4": true and "EnableIPv6": false$/,
    );
  });
  await t.step("IPv6 only under the default EnableIPv4", () => {
    assert.throws(
      () =>
        checkOwnPodCIDRs(
          "n",
          parsePodCIDRs(node({}, { podCIDRs: ["fd00:0:0:3::/64"] })),
          DUAL,
          "/x",
        ),
      /no IPv4 pod CIDR \(podCIDRs fd00:0:0:3::\/64\) but IPv4 is enabled in \/x \("EnableIPv4" defaults to true\).*set "EnableIPv4": false$/,
    );
  });
  await t.step("IPv6 only in an IPv6-only network", () => {
    const r = checkOwnPodCIDRs(
      "n",
      parsePodCIDRs(node({}, { podCIDR: "fd00:0:0:3::/64", podCIDRs: ["fd00:0:0:3::/64"] })),
      V6_ONLY,
      "/x.json",
    );
    assert.deepEqual(r, {
      subnet: { ip: 0, prefix: 0 },
      ipv6Subnet: { ip: parseIP6("fd00:0:0:3::"), prefix: 64 },
    });
  });
});

Deno.test("macFromBackendData() reads VtepMAC, with flannel's fallback", () => {
  assert.equal(macFromBackendData('{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}'), "12:c6:65:89:b4:e3");
  assert.equal(macFromBackendData('{"vtepmac":"12:c6:65:89:b4:e3","VNI":1}'), "12:c6:65:89:b4:e3");
  assert.equal(macFromBackendData("null"), undefined);
  assert.equal(macFromBackendData('{"VtepMAC":"aa:bb"'), "aa:bb");
  assert.equal(macFromBackendData(undefined), undefined);
});

Deno.test("badAddressAnnotations() names each unusable own address annotation, briefly", () => {
  const bad = badAddressAnnotations(
    node({
      [`${P}public-ip-overwrite`]: "224.0.0.1",
      [`${P}node-public-ip`]: "192.168.1.5",
      [`${P}public-ipv6-overwrite`]: "::1",
      [`${P}node-public-ipv6`]: "y".repeat(1_000_000),
    }),
    A,
  );
  assert.deepEqual([...bad.keys()], [
    `${P}public-ip-overwrite`,
    `${P}public-ipv6-overwrite`,
    `${P}node-public-ipv6`,
  ]);
  assert.equal(
    bad.get(`${P}public-ip-overwrite`),
    `Ignoring annotation ${P}public-ip-overwrite "224.0.0.1" on node "test": it is a multicast address`,
  );
  const long = bad.get(`${P}node-public-ipv6`)!;
  assert.ok(long.length < 400, `${long.length} characters`);
  assert.match(long, /"y+"… \(1000000 bytes\) on node "test": it is not an IPv6 address$/);
});
