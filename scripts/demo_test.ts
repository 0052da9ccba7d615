/**
 * `deno task demo` as a user runs it (root for all but the usage errors): a vxlan, a `--kube`
 * udp and a `--dual-stack` host-gw and vxlan run end with the line that proves it works and leave
 * no namespace behind; a default run interrupted with Ctrl-C (SIGINT) tears down and exits 130.
 */
import assert from "node:assert/strict";
import { sh, skipUnlessRoot } from "../test/testbed.ts";

const DEMO = new URL("./demo.ts", import.meta.url).pathname;

function demo(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", DEMO, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function runDemo(args: string[]) {
  const out = await demo(args).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** The test-bed number in the demo's first line (`10.199.K.254`). */
function bedNumber(stdout: string): number {
  const k = /10\.199\.(\d+)\.254/.exec(stdout.split("\n")[0])?.[1];
  assert.ok(k, `first line names the bed: ${stdout.split("\n")[0]}`);
  return Number(k);
}

async function leftovers(k: number): Promise<string[]> {
  const list = (await sh(["ip", "netns", "list"])).stdout.split("\n");
  return list.filter((l) => new RegExp(`^ft${k}(h|ul)`).test(l));
}

const root = { ignore: skipUnlessRoot("demo"), sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "a demo that fails exits 1 with the error instead of waiting for ever",
  ...root,
  fn: async () => {
    // No `ip` on the PATH: building the test bed fails at its first command.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", DEMO, "--backend", "host-gw"],
      env: { PATH: "/nonexistent" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, `exit ${out.code} (${out.signal ?? "no signal"}): ${stderr}`);
    assert.match(stderr, /NotFound|No such file|not found/i);
  },
});

Deno.test("demo refuses unknown backends and host counts with the usage", async () => {
  for (
    const [args, want] of [
      [
        ["--backend", "wireguard"],
        /unknown backend "wireguard": choose one of host-gw, vxlan, udp/,
      ],
      [["--hosts", "1"], /--hosts 1: a whole number from 2 to 20/],
      [["--frobnicate"], /Unknown option '--frobnicate'/],
      [["--dual-stack", "--backend", "udp"], /--dual-stack works with --backend host-gw or vxlan/],
      [["--dual-stack", "--kube"], /in etcd mode \(no --kube\)/],
    ] as const
  ) {
    const r = await runDemo([...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, want);
    assert.match(r.stderr, /usage: deno task demo \[--backend host-gw\|vxlan\|udp\]/);
  }
});

Deno.test({
  ...root,
  name: "demo --backend vxlan shows the VXLAN device, neighbours and FDB and that pods connect",
  fn: async () => {
    const r = await runDemo(["--backend", "vxlan", "--hosts", "2"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^flanneld demo: 2 hosts, backend vxlan, etcd at /);
    for (const h of ["host1", "host2"]) assert.match(r.stdout, new RegExp(`^${h} · eth0 `, "m"));
    assert.match(r.stdout, /^ {2}subnet\.env {3}FLANNEL_NETWORK=10\.100\.0\.0\/16$/m);
    assert.match(r.stdout, /^ {2}device {7}flannel\.1 {2}vxlan id 1, .*port 8472, nolearning$/m);
    assert.match(r.stdout, /^ {2}neighbours {3}10\.100\.\d+\.0 lladdr \S+ PERMANENT$/m);
    assert.match(r.stdout, /^ {2}fdb {10}\S+ dst 10\.199\.\d+\.\d+ self permanent$/m);
    assert.match(r.stdout, /^ping {4}pod .* 3\/3 replies/m);
    assert.match(r.stdout, /^✔ it works: a pod on host1 reached a pod on host2 through the vxlan/m);
    assert.deepEqual(await leftovers(bedNumber(r.stdout)), []);
  },
});

Deno.test({
  ...root,
  name: "demo --dual-stack shows IPv6 in subnet.env and the kernel, and a ping -6 across hosts",
  fn: async (t) => {
    for (const backend of ["host-gw", "vxlan"]) {
      await t.step(backend, async () => {
        const r = await runDemo(["--dual-stack", "--backend", backend, "--hosts", "2"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(
          r.stdout,
          new RegExp(`^flanneld demo: 2 hosts, backend ${backend}, dual stack \\(IPv4 \\+ IPv6\\)`),
        );
        assert.match(r.stdout, /^host1 · eth0 10\.199\.\d+\.1, fd99:[0-9a-f]+::1$/m);
        assert.match(r.stdout, /^ {15}FLANNEL_IPV6_NETWORK=fd00:100::\/56$/m);
        assert.match(r.stdout, /^ {15}FLANNEL_IPV6_SUBNET=fd00:100:0:[0-9a-f]+::1\/64$/m);
        if (backend === "host-gw") {
          assert.match(
            r.stdout,
            /^ {15}fd00:100:0:[0-9a-f]+::\/64 via fd99:[0-9a-f]+::2 dev eth0 proto 101$/m,
          );
        } else {
          assert.match(
            r.stdout,
            /^ {2}device {7}flannel-v6\.1 {2}vxlan id 1, local fd99:[0-9a-f]+::1 dev eth0, port 8472, nolearning$/m,
          );
          assert.match(
            r.stdout,
            /^ {2}neighbours {3}fd00:100:0:[0-9a-f]+:: lladdr \S+ PERMANENT$/m,
          );
          assert.match(r.stdout, /^ {2}fdb {10}\S+ dst fd99:[0-9a-f]+::2 self permanent$/m);
          assert.match(
            r.stdout,
            /^ {2}routes {7}fd00:100:0:([0-9a-f]+)::\/64 via fd00:100:0:\1:: proto 101 onlink$/m,
          );
        }
        assert.match(r.stdout, /^ping -6 pod fd00:100:.* 3\/3 replies/m);
        assert.match(r.stdout, /^✔ it works: .* through the \S+ backend, in IPv4 and IPv6$/m);
        assert.deepEqual(await leftovers(bedNumber(r.stdout)), []);
      });
    }
  },
});

Deno.test({
  ...root,
  name: "demo --kube runs the DaemonSet's agent against the fake API server (udp backend)",
  fn: async () => {
    const r = await runDemo(["--kube", "--backend", "udp", "--hosts", "2"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}flags +--ip-masq --kube-subnet-mgr --healthz-port=8081$/m);
    assert.match(r.stdout, /EVENT_QUEUE_DEPTH=5000 CONT_WHEN_CACHE_NOT_READY=false/);
    for (const [i, h] of ["host1", "host2"].entries()) {
      assert.match(
        r.stdout,
        new RegExp(
          `^${h} +10\\.244\\.${i + 1}\\.0/24 +10\\.199\\.\\d+\\.${i + 1} +"" +` +
            `False \\(FlannelIsUp\\) +200 flanneld is ready$`,
          "m",
        ),
      );
    }
    assert.match(r.stdout, /^ {2}flannel\.alpha\.coreos\.com\/kube-subnet-manager +true$/m);
    assert.match(r.stdout, /^ {2}device {7}flannel0 {2}tun, mtu \d+$/m);
    assert.match(
      r.stdout,
      /^✔ it works: .* through the udp backend, with subnets from the nodes'/m,
    );
    assert.deepEqual(await leftovers(bedNumber(r.stdout)), []);
  },
});

Deno.test({
  ...root,
  name: "demo interrupted with Ctrl-C tears everything down and exits 130",
  fn: async () => {
    const child = demo([]).spawn();
    let stdout = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!stdout.includes("starting flanneld on host1 host2 host3")) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assert.equal(status.code, 130, stdout + stderr);
    assert.match(stderr, /interrupted: tearing down the test bed/);
    assert.doesNotMatch(stdout + stderr, /✘|error/);
    assert.deepEqual(await leftovers(bedNumber(stdout)), []);
  },
});
